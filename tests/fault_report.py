"""The fault matrix's report: one line per case run, printed at the end of the test run.

``tests/system/test_fault_matrix.py`` adds an ``Outcome`` per case;
``tests/conftest.py``'s ``pytest_terminal_summary`` prints ``lines()``
(nothing when no case ran).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """How one fault case went: converged or not, how fast, and what it launched."""

    case: str
    passed: bool
    seconds: float
    launches: int
    expected_launches: int
    detail: str = ""


OUTCOMES: list[Outcome] = []


def lines() -> list[str]:
    """The report: a row per case, then ``fault matrix: N/M cases passed``."""
    if not OUTCOMES:
        return []
    rows = [
        f"{'case':<28} {'result':<7} {'converged in':>12} {'launches':>9} {'expected':>9}",
    ]
    for o in OUTCOMES:
        result = "passed" if o.passed else "FAILED"
        rows.append(
            f"{o.case:<28} {result:<7} {o.seconds:>10.1f} s {o.launches:>9} "
            f"{o.expected_launches:>9}" + (f"  {o.detail}" if o.detail else "")
        )
    passed = sum(o.passed for o in OUTCOMES)
    rows.append(f"fault matrix: {passed}/{len(OUTCOMES)} cases passed")
    return rows
