"""Counting and choosing, shared by every engine.

The counting rule: an instance counts toward a domain's size while it is
live (state before TERMINATING), healthy, and not already asked to go.  An
unhealthy live instance (bad health, or RUNNING_FAILED) is destroyed and
stops counting, so the engine launches its replacement in the same pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from epum.engines.base import EngineControl
from epum.instances import DomainState, Instance
from epum.states import DecisionEngineState, InstanceState

log = logging.getLogger(__name__)

#: A logger or an adapter that adds context (such as the domain) to it.
Log = logging.Logger | logging.LoggerAdapter

#: Launch outcomes in a row that make an engine (or a site) "failing".
FAILURE_STREAK = 3

_SUCCESS = (InstanceState.RUNNING, InstanceState.RUNNING_FAILED)
_FAILURE = (InstanceState.FAILED, InstanceState.REJECTED)


def explain(control: EngineControl, code: str, text: str) -> None:
    """Tell the decision log why (``control.explain``), if this control keeps one.

    ``code`` is one of ``epum.decisions.REASONS`` for an action not taken; given
    just before a launch or termination, ``text`` is that action's why.
    """
    record = getattr(control, "explain", None)
    if record is not None:
        record(code, text)


def aim(control: EngineControl, target: int, **inputs: Any) -> None:
    """Tell the decision log the size aimed at and the engine's own inputs (bounds...)."""
    record = getattr(control, "aim", None)
    if record is not None:
        record(target, **inputs)


def observe(control: EngineControl, **inputs: Any) -> None:
    """Tell the decision log an input the engine computed (the metric's value...)."""
    record = getattr(control, "observe", None)
    if record is not None:
        record(**inputs)


def clock_time(t: float) -> str:
    """``HH:MM:SS`` (UTC) of a time, as the decision log's words show it."""
    return time.strftime("%H:%M:%S", time.gmtime(t))


class DestroyTracker:
    """Remembers which instances an engine asked to destroy.

    A destroy request reaches the records only when the provisioner answers;
    until then the records still show the instance live.  The tracker keeps
    such instances out of the count and keeps the engine from asking twice.
    Ids are forgotten once their record is no longer live (or is gone).
    """

    def __init__(self) -> None:
        self._asked: set[str] = set()

    def live(self, state: DomainState) -> list[Instance]:
        """Live instances of ``state`` not yet asked to go (forgets settled ids)."""
        live = state.get_live_instances()
        self._asked &= {i.instance_id for i in live}
        return [i for i in live if i.instance_id not in self._asked]

    def destroy(
        self,
        control: EngineControl,
        instances: Sequence[Instance],
        why: str,
        logger: Log = log,
    ) -> None:
        """Ask ``control`` to destroy ``instances`` (none already asked for)."""
        ids = [i.instance_id for i in instances if i.instance_id not in self._asked]
        if not ids:
            return
        logger.info("%s: asking to destroy %s", why, ", ".join(ids))
        explain(control, "destroy", why)
        control.destroy_instances(ids)
        self._asked.update(ids)

    def forget(self) -> None:
        """Forget every request (the engine is going away)."""
        self._asked.clear()


def healthy_live(
    control: EngineControl, state: DomainState, tracker: DestroyTracker, logger: Log = log
) -> list[Instance]:
    """Destroy the unhealthy live instances; return the live ones that still count."""
    unhealthy = state.get_unhealthy_instances()
    tracker.destroy(control, unhealthy, "unhealthy", logger)
    return tracker.live(state)


def _newest_first(instances: Iterable[Instance]) -> list[Instance]:
    return sorted(instances, key=lambda i: (i.state_time, i.instance_id), reverse=True)


def pick_victims(
    instances: Sequence[Instance], count: int, retirable: Iterable[str] = ()
) -> list[Instance]:
    """Choose ``count`` of ``instances`` to destroy, most expendable first.

    Order: retirable ones, then those not yet RUNNING (newest first: they
    cost least to give up), then the others, newest first.  "Newest" is the
    latest ``state_time``; ties go by instance id so the choice is stable.
    """
    if count <= 0:
        return []
    retire = set(retirable)
    first = _newest_first(i for i in instances if i.instance_id in retire)
    rest = [i for i in instances if i.instance_id not in retire]
    pending = _newest_first(i for i in rest if i.state < InstanceState.RUNNING)
    others = _newest_first(i for i in rest if i.state >= InstanceState.RUNNING)
    return (first + pending + others)[:count]


def failure_streak(instances: Iterable[Instance]) -> tuple[int, float | None]:
    """Launch failures in a row among the latest outcomes, and the latest one's time.

    An outcome is an instance that got to RUNNING (success) or ended FAILED
    or REJECTED (failure); instances still on their way, and those we
    terminated, say nothing about launches and are skipped.  Outcomes are
    ordered by ``state_time``, newest first; the streak is how many failures
    come before the first success.
    """
    outcomes = _newest_first(i for i in instances if i.state in _SUCCESS + _FAILURE)
    streak = 0
    for inst in outcomes:
        if inst.state in _SUCCESS:
            break
        streak += 1
    latest = outcomes[0].state_time if streak else None
    return streak, latest


def judge(live: Sequence[Instance], wanted: int, all_instances: Iterable[Instance]) -> str:
    """The engine state after a decision.

    STABLE when exactly ``wanted`` instances count and all of them are
    RUNNING; DEVIATING when the last FAILURE_STREAK launch outcomes all
    failed; PENDING otherwise (on its way to the wanted size).
    """
    if len(live) == wanted and all(i.state == InstanceState.RUNNING for i in live):
        return DecisionEngineState.STABLE
    if failure_streak(all_instances)[0] >= FAILURE_STREAK:
        return DecisionEngineState.DEVIATING
    return DecisionEngineState.PENDING
