"""The demo's live screen, and ``epum demo`` / ``scripts/demo`` with and without a terminal."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from epum.sim.live import HOME_AND_CLEAR, LiveScreen, frame
from epum.sim.stubs import SimClock
from epum.sim.timeline import Seen, Timeline

ROOT = Path(__file__).resolve().parents[2]
EPUM = Path(sys.executable).with_name("epum")


def timeline_with(n_lines: int) -> Timeline:
    timeline = Timeline(store=None, owner="o", clock=SimClock(0.0), out=lambda line: None)
    timeline.instances["abcdef123456"] = Seen(
        "vm1", "abcdef123456", "workers", "600-RUNNING", "OK", "10.0.0.1", ["OK"]
    )
    for n in range(n_lines):
        timeline.say(f"event {n}")
    return timeline


def test_a_frame_shows_the_instances_then_the_latest_timeline_lines():
    text = frame("title", timeline_with(30), rows=12, width=80)
    lines = text.splitlines()
    assert lines[0] == "title"
    assert lines[2].split() == ["NAME", "INSTANCE", "STATE", "HEALTH", "ADDRESS"]
    assert lines[3].split() == ["vm1", "abcdef12", "RUNNING", "OK", "10.0.0.1"]
    assert lines[5] == "Timeline:"
    assert lines[-1].endswith("event 29")
    assert len(lines) == 6 + 5  # the room left, at least 5 lines
    assert max(len(line) for line in frame("t" * 200, timeline_with(1), 40, 50).splitlines()) == 50


def test_the_screen_is_redrawn_only_when_it_changes_and_paced():
    timeline, out, slept = timeline_with(1), io.StringIO(), []
    screen = LiveScreen(timeline, out, "t", size=lambda: (80, 20), pace=0.5, sleep=slept.append)
    screen(0.0)
    screen(1.0)
    assert (screen.frames, slept) == (1, [])
    timeline.say("something new")
    screen(2.0)
    assert (screen.frames, slept) == (2, [0.5])
    assert out.getvalue().count(HOME_AND_CLEAR) == 2


def read_all(fd: int, proc: subprocess.Popen, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    return seen


def test_epum_demo_under_a_terminal_is_a_live_table():
    main, child = pty.openpty()
    proc = subprocess.Popen([str(EPUM), "demo", "--pace", "0"], stdout=child, stderr=child)
    os.close(child)
    try:
        seen = read_all(main, proc, 60)
        assert proc.wait(30) == 0, seen[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    assert seen.count(HOME_AND_CLEAR.encode()) > 10
    assert b"NAME  INSTANCE" in seen
    assert b"[ok] domain removed" in seen


def test_scripts_demo_without_a_terminal_is_plain():
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout
    assert done.stdout.startswith("epum demo: one domain of simulated instances")
    assert "[ok] domain removed" in done.stdout and "[FAILED]" not in done.stdout
