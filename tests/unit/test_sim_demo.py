"""The demo plays every stage and ends with the domain gone and every instance down."""

from __future__ import annotations

from epum.sim import demo
from epum.states import InstanceHealthState, InstanceState


def test_demo_plays_every_stage():
    lines: list[str] = []
    result = demo.run_demo(out=lines.append)
    assert result.ok, result.stages
    assert list(result.stages) == [
        "three running",
        "failed instance replaced",
        "process error replaced",
        "silent instance found",
        "silent instance replaced",
        "scaled to five",
        "domain removed",
    ]
    # 3 at first, 3 replacements, 2 more to reach 5
    assert result.launched == 8
    assert result.peak_running == 5
    assert result.final_states == {InstanceState.TERMINATED: 7, InstanceState.FAILED: 1}
    assert result.domains_left == []
    assert result.notifications >= 8, "every instance reaching RUNNING was told"
    assert lines == result.lines
    text = "\n".join(lines)
    assert InstanceHealthState.PROCESS_ERROR in text
    assert "OK -> OUT_OF_CONTACT" in text
    assert "OUT_OF_CONTACT -> MISSING" in text
    assert "domain is gone" in text
    assert len(result.table) == 1 + 8
    assert result.simulated_seconds < 300


def test_demo_main_exits_zero(capsys):
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    assert "[ok] domain removed" in out
    assert "[FAILED]" not in out
    assert "Every instance the domain had" in out
