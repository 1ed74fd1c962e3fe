"""What an engine may do to its domain: launch and destroy, with retry pacing.

A ``DomainControl`` belongs to one domain in the decider.  ``launch`` writes
REQUESTING records before it asks the provisioner, so nothing asked for is
ever unknown to the store; ``destroy_instances`` moves records to
TERMINATING before asking for termination.  Requests the provisioner has not
answered yet (records still REQUESTING or TERMINATING) are re-sent by
``resend_unanswered`` no more often than every ``RESEND_INTERVAL`` seconds
per instance; the provisioner treats a repeated request for the same node as
the same request.

Launches are bounded (``LaunchBudget``): at most ``per_pass`` launches per
domain in one pass, and all domains together at ``per_second`` (a bucket of
one second's worth, refilled by decision time), so a domain scaling up far
is grown over several passes and never starves the others; and never past
``max_instances`` live records.  A launch that finds no budget left, or its
domain marked for removal, launches what it may and raises
``LaunchDeferred`` when that is nothing; the decider logs it and moves on.

A control acts only within its decider's term: once ``term`` has ended (the
decider was deposed, and another may be in office), ``launch`` and
``destroy_instances`` raise ``NotLeaderError`` before their next write or
request, so a decision under way when leadership is lost stops there.

Fencing.  Each record write carries the term, and the store refuses it
(``NotLeaderError``, nothing written) once the term is out of office by the
store's account (on ZooKeeper: its election seat is gone), even when this
process has not yet heard that it was deposed, e.g. after being paused past
its session.  Every request to the provisioner follows its fenced write, and
a refused write stops the control before it sends anything; re-sends, which
follow no write, first ask the store to confirm the term.  A control with no
term (``term=None``, a control built outside a decider) is not fenced.

The control also takes the engine's account of its decision (``explain``,
``aim``) and notes every launch and termination in ``notes``, the decision
log's ``PassNotes`` of the current pass.  With ``dry_run`` set, launches
and terminations are only noted: nothing is written or sent.

For engines written for the original system, the control also has the
original's ``configure(parameters)`` (accepted and logged; see its doc) and
``health_not_checked`` (True unless the domain's health is monitored).
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from epum.decisions import PassNotes
from epum.errors import BadRequestError, EpumError, NotLeaderError
from epum.health import health_config_of
from epum.instances import Instance
from epum.states import InstanceHealthState, InstanceState
from epum.store.base import DomainStore, update_instance_with_retry
from epum.subscribers import Subscribers
from epum.term import Term

log = logging.getLogger(__name__)

#: Seconds between two sends of the same unanswered launch or termination:
#: long enough for a loaded provisioner to answer, short enough that a lost
#: message costs little.
RESEND_INTERVAL = 5.0


def awaits_answer(record: Instance) -> bool:
    """True if ``resend_unanswered`` may re-send something for ``record`` once time
    passes: a launch still REQUESTING, a termination still TERMINATING, or a zombie."""
    return record.health == InstanceHealthState.ZOMBIE or record.state in (
        InstanceState.REQUESTING,
        InstanceState.TERMINATING,
    )


class LaunchDeferred(EpumError):
    """No launch is allowed now (budget used up, domain full or being removed); the
    engine's decision ends here and the next pass goes on."""


class LaunchBudget:
    """The launches all domains may make: ``per_second``, with a burst of one second.

    ``refill(now)`` adds what the decision time ``now`` earned since the last
    refill; ``take()`` spends one launch if there is one.  Time is the
    decider's decision time, so tests drive it without sleeping.  Thread-safe:
    a worker's deciders of several shares spend one budget.
    """

    def __init__(self, per_second: float):
        self.per_second = per_second
        self.tokens = per_second
        self._last: float | None = None
        self._lock = threading.Lock()

    def refill(self, now: float) -> None:
        """Add the launches earned since the last refill (up to one second's worth)."""
        with self._lock:
            if self._last is not None and now > self._last:
                earned = (now - self._last) * self.per_second
                self.tokens = min(self.per_second, self.tokens + earned)
            self._last = now if self._last is None else max(self._last, now)

    def take(self) -> bool:
        """Spend one launch; False (and nothing spent) when none is left."""
        with self._lock:
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class DomainControl:
    """The ``EngineControl`` of one domain.

    ``now`` is the time of the current decision, ``launch_vars`` the vars
    every launch carries, ``term`` the decider's term the decision runs
    under, ``notes`` the decision log of this pass and ``dry_run`` whether
    actions are only noted; the decider sets them before each decision.
    """

    def __init__(
        self,
        domain: DomainStore,
        provisioner: Any,
        heartbeat_dest: str,
        launch_vars: dict[str, Any] | None = None,
        now: float = 0.0,
        subscribers: Subscribers | None = None,
        term: Term | None = None,
        budget: LaunchBudget | None = None,
    ):
        self.domain = domain
        self.term = term
        self.budget = budget
        #: Launches this domain may still make in the current pass (None: no bound);
        #: the decider sets it, with ``live_room``, before each decision.
        self.launches_left: int | None = None
        #: How many more live records the domain may have (None: no bound).
        self.live_room: int | None = None
        self.subscribers = subscribers
        self.provisioner = provisioner
        self.heartbeat_dest = heartbeat_dest
        self.launch_vars: dict[str, Any] = dict(launch_vars or {})
        self.now = now
        self._last_sent: dict[str, float] = {}
        self.notes = PassNotes()
        self.dry_run = False
        #: The original's flag for engines: True unless the domain's health is
        #: monitored (the decider sets it from the config with ``health_unchecked``).
        self.health_not_checked = True

    def configure(self, parameters: dict[str, Any] | None) -> None:
        """The original's ``control.configure``, which its engine guide had engines
        call from ``initialize``: accepted, so such engines run, and logged.

        Nothing is changed: the original's one pacing parameter
        (``timed-pulse-irregular``) is not honoured, since the decider's pace
        is the service's ``decider_loop_interval`` (and it wakes early for a
        changed domain); a domain's launch vars come from its
        ``engine_conf.provisioner_vars``, not from ``provisioner_vars`` here.
        """
        if parameters:
            log.info("control.configure(%s) accepted and ignored", ", ".join(map(str, parameters)))

    @staticmethod
    def health_unchecked(config: dict[str, Any]) -> bool:
        """``health_not_checked`` for a domain config: True unless its
        ``health.monitor_health`` is on (a health section that does not read counts as
        not monitored, so a corrupt config never stops a removal)."""
        try:
            return not health_config_of(config.get("health") or {}).monitor_health
        except (BadRequestError, AttributeError, TypeError):
            return True

    def explain(self, code: str, text: str) -> None:
        """The engine's reason (``epum.decisions.REASONS``) for what it does or does not do.

        Given just before a launch or termination, ``text`` is that action's why.
        """
        self.notes.explain(code, text)

    def aim(self, target: int, **inputs: Any) -> None:
        """The engine's target size for this pass, and inputs of its own (bounds, cooldown
        left...) for the decision log, which tells when the target is not met."""
        self.notes.target = int(target)
        self.observe(**inputs)

    def observe(self, **inputs: Any) -> None:
        """Inputs the engine computed (the metric's value...), for the decision log."""
        self.notes.inputs.update(inputs)

    def launch(
        self,
        deployable_type: str | None,
        site: str | None,
        allocation: str | None,
        count: int = 1,
        extravars: dict[str, Any] | None = None,
    ) -> tuple[str, list[str]]:
        """Record ``count`` new instances as REQUESTING, then ask the provisioner.

        All share one launch id; each gets its own provision request (the
        vars name one node).  A failed request is re-sent later.  Fewer than
        ``count`` are launched when the budget runs out (see the module);
        ``LaunchDeferred`` when none may be.
        """
        launch_id = str(uuid.uuid4())
        if self.dry_run:
            ids = [f"dry-run-{uuid.uuid4()}" for _ in range(count)]
            self.notes.launched(count, site, ids)
            return launch_id, ids
        instances = []
        for _ in range(count):
            self._check_office()
            reason = self._no_launch_reason()
            if reason is not None:
                if not instances:
                    raise LaunchDeferred(reason)
                log.info("launching %d of %d: %s", len(instances), count, reason)
                break
            record = Instance(
                instance_id=str(uuid.uuid4()),
                launch_id=launch_id,
                site=site,
                allocation=allocation,
                state=InstanceState.REQUESTING,
                state_time=self.now,
                deployable_type=deployable_type,
                extravars=dict(extravars) if extravars else None,
            )
            instances.append(self.domain.add_instance(record, term=self.term))
            self._spend()
        log.info(
            "launching %d x %s at %s (launch %s)", len(instances), deployable_type, site, launch_id
        )
        # A record written after leadership was lost stays REQUESTING: the
        # decider in office sees it and re-sends it (or destroys it).
        self._check_office()
        for record in instances:
            self._send_provision(record)
        self.notes.launched(count, site, [r.instance_id for r in instances])
        return launch_id, [r.instance_id for r in instances]

    def destroy_instances(self, instance_ids: list[str]) -> None:
        """Move live records to TERMINATING and ask the provisioner to terminate them.

        Subscribers hear of each instance that leaves RUNNING this way.
        """
        ids = list(instance_ids)
        if self.dry_run:
            self.notes.destroyed(ids)
            return
        for instance_id in ids:
            self._check_office()
            changed = update_instance_with_retry(
                self.domain, instance_id, self._to_terminating, term=self.term
            )
            self._last_sent[instance_id] = self.now
            if changed is not None and self.subscribers is not None:
                self.subscribers.instance_changed(self.domain, *changed)
        if ids:
            self._check_office()
            log.info("terminating %s", ", ".join(ids))
            self._send_terminate(ids)
            self.notes.destroyed(ids)

    def _no_launch_reason(self) -> str | None:
        """Why no launch may be made now, or None."""
        if self.launches_left is not None and self.launches_left <= 0:
            return "this pass's launches for the domain are used up (limits.max_launches_per_pass)"
        if self.live_room is not None and self.live_room <= 0:
            return "the domain is full (limits.max_instances_per_domain)"
        if self.domain.is_removed():
            return "the domain is being removed"
        if self.budget is not None and not self.budget.take():
            return "the launch rate of all domains is used up (limits.max_launches_per_second)"
        return None

    def _spend(self) -> None:
        if self.launches_left is not None:
            self.launches_left -= 1
        if self.live_room is not None:
            self.live_room -= 1

    def _check_office(self) -> None:
        if self.term is not None and self.term.ended:
            raise NotLeaderError(f"no longer the decider of {self.domain.domain_id}")

    def _to_terminating(self, record: Instance) -> Instance | None:
        if record.state >= InstanceState.TERMINATING:
            return None
        return record.replace(
            state=InstanceState.TERMINATING,
            state_time=self.now,
            health=InstanceHealthState.UNKNOWN,
        )

    def resend_unanswered(self, instances: list[Instance]) -> None:
        """Re-send launches still REQUESTING and terminations still TERMINATING.

        Zombies (terminated instances still heartbeating, as the doctor
        found) are asked to terminate again at the same pace.  Before any
        re-send the store confirms the term (NotLeaderError, nothing sent,
        if it is out of office).

        An instance is re-sent only when ``RESEND_INTERVAL`` has passed since
        it was last sent by this control, or, for one this control never
        sent (a new leader), since its ``state_time``.  Nothing is re-sent
        in dry-run.
        """
        if self.dry_run:
            return
        to_provision, to_terminate = [], []
        for record in instances:
            if not awaits_answer(record):
                continue
            last = self._last_sent.get(record.instance_id, record.state_time)
            if self.now - last < RESEND_INTERVAL:
                continue
            if record.state == InstanceState.REQUESTING:
                to_provision.append(record)
            else:
                to_terminate.append(record.instance_id)
        if to_provision or to_terminate:
            self._check_office()
            if self.term is not None:
                self.domain.confirm_term(self.term)
        for record in to_provision:
            log.info("re-sending unanswered launch of %s", record.instance_id)
            self._send_provision(record)
        for instance_id in to_terminate:
            self._last_sent[instance_id] = self.now
        if to_terminate:
            log.info("re-sending unanswered termination of %s", ", ".join(to_terminate))
            self._send_terminate(to_terminate)
        known = {r.instance_id for r in instances}
        for gone in set(self._last_sent) - known:
            del self._last_sent[gone]

    def _send_provision(self, record: Instance) -> None:
        self._last_sent[record.instance_id] = self.now
        launch_vars = dict(self.launch_vars)
        launch_vars.update(record.extravars or {})
        launch_vars["node_id"] = record.instance_id
        launch_vars["heartbeat_dest"] = self.heartbeat_dest
        try:
            self.provisioner.provision(
                record.launch_id,
                [record.instance_id],
                record.deployable_type,
                record.site,
                allocation=record.allocation,
                vars=launch_vars,
                caller=self.domain.owner,
            )
        except Exception:
            log.exception("provision request for %s failed; will re-send", record.instance_id)

    def _send_terminate(self, ids: list[str]) -> None:
        try:
            self.provisioner.terminate_nodes(ids, caller=self.domain.owner)
        except Exception:
            log.exception("terminate request failed; will re-send")
