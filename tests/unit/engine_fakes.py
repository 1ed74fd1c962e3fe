"""Test doubles for engines: a control that records what an engine asks.

``FakeControl`` behaves like the real control as far as an engine can tell:
a launch adds REQUESTING records (so the next ``state()`` shows them), a
destroy marks records TERMINATING (unless ``mark_destroyed=False``, to play
a control whose writes lag).  Tests move instances along with ``set`` and
``run_all`` and build the engine's view with ``state(now=...)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from epum.engines.base import Engine, EngineControl
from epum.instances import DomainState, Instance
from epum.states import InstanceHealthState, InstanceState


def make_instance(
    instance_id: str,
    state: str = InstanceState.RUNNING,
    *,
    site: str | None = "site-a",
    state_time: float = 0.0,
    health: str = InstanceHealthState.UNKNOWN,
    **fields: Any,
) -> Instance:
    """A record with sensible defaults for tests."""
    return Instance(
        instance_id=instance_id,
        launch_id=fields.pop("launch_id", f"launch-of-{instance_id}"),
        site=site,
        allocation=fields.pop("allocation", None),
        state=state,
        state_time=state_time,
        health=health,
        **fields,
    )


@dataclass
class LaunchCall:
    """One ``launch`` request as the engine made it."""

    launch_id: str
    instance_ids: list[str]
    deployable_type: str | None
    site: str | None
    allocation: str | None
    count: int
    extravars: dict[str, Any] | None = field(default=None)


class FakeControl(EngineControl):
    """Records launches and destroys and keeps the domain's records."""

    def __init__(self, *, now: float = 1000.0, mark_destroyed: bool = True):
        self.now = now
        self.mark_destroyed = mark_destroyed
        self.instances: dict[str, Instance] = {}
        self.launches: list[LaunchCall] = []
        self.destroy_calls: list[list[str]] = []
        self._seq = itertools.count(1)

    # -- the EngineControl side -------------------------------------------
    def launch(
        self,
        deployable_type: str | None,
        site: str | None,
        allocation: str | None,
        count: int = 1,
        extravars: dict[str, Any] | None = None,
    ) -> tuple[str, list[str]]:
        """Add ``count`` REQUESTING records and return fresh ids."""
        assert count >= 1, f"launch of {count} instances"
        launch_id = f"launch-{next(self._seq):04d}"
        ids = [f"i-{next(self._seq):04d}" for _ in range(count)]
        for instance_id in ids:
            self.instances[instance_id] = make_instance(
                instance_id,
                InstanceState.REQUESTING,
                site=site,
                state_time=self.now,
                launch_id=launch_id,
                allocation=allocation,
                deployable_type=deployable_type,
                extravars=dict(extravars) if extravars else None,
            )
        self.launches.append(
            LaunchCall(launch_id, ids, deployable_type, site, allocation, count, extravars)
        )
        return launch_id, ids

    def destroy_instances(self, instance_ids: list[str]) -> None:
        """Record the request; mark the records TERMINATING if so configured."""
        self.destroy_calls.append(list(instance_ids))
        if self.mark_destroyed:
            for instance_id in instance_ids:
                if instance_id in self.instances:
                    self.set(instance_id, InstanceState.TERMINATING)

    # -- the test side -----------------------------------------------------
    @property
    def destroyed(self) -> list[str]:
        """Every id asked to be destroyed, in order."""
        return [i for call in self.destroy_calls for i in call]

    @property
    def launched(self) -> list[str]:
        """Every id launched, in order."""
        return [i for call in self.launches for i in call.instance_ids]

    def add(self, instance_id: str, state: str = InstanceState.RUNNING, **fields: Any) -> Instance:
        """Put an existing instance in the domain."""
        fields.setdefault("state_time", self.now)
        inst = make_instance(instance_id, state, **fields)
        self.instances[instance_id] = inst
        return inst

    def set(self, instance_id: str, state: str | None = None, **changes: Any) -> None:
        """Change a record (a new state gets ``state_time = now``)."""
        if state is not None:
            changes.update(state=state, state_time=self.now)
        self.instances[instance_id] = self.instances[instance_id].replace(**changes)

    def run_all(self) -> None:
        """Bring every instance before RUNNING to RUNNING."""
        for inst in list(self.instances.values()):
            if inst.state < InstanceState.RUNNING:
                self.set(inst.instance_id, InstanceState.RUNNING)

    def live_ids(self) -> set[str]:
        """Ids of the records before TERMINATING."""
        return {i for i, inst in self.instances.items() if inst.state < InstanceState.TERMINATING}

    def state(self, now: float | None = None, sensor_data: dict | None = None) -> DomainState:
        """The engine's view of the domain now (or at ``now``)."""
        if now is not None:
            self.now = now
        return DomainState(dict(self.instances), sensor_data=sensor_data, now=self.now)

    def reset_calls(self) -> None:
        """Forget the recorded launches and destroys (records stay)."""
        self.launches.clear()
        self.destroy_calls.clear()


class ExtraEngine(Engine):
    """A trivial engine the loader tests import through an allowed prefix."""

    def initialize(self, control, state, conf):
        """Nothing to take."""

    def decide(self, control, state):
        """Nothing to do."""


class NotAnEngine:
    """A class the loader must refuse: it is no Engine."""


class AbstractEngine(Engine):
    """An engine the loader must refuse: ``decide`` is missing."""

    def initialize(self, control, state, conf):
        """Nothing to take."""


class PlainEngine:
    """A custom engine written as the original's were: a plain class, no epum base.

    It keeps ``preserve_n`` instances using only the original's State helpers
    and records what it saw, so tests can check the helpers reach it.
    """

    def __init__(self):
        self.de_state = "PENDING_DE"
        self.preserve_n = 0
        self.seen = []

    @classmethod
    def validate_config(cls, conf):
        """Raise ValueError, as the original's engines did."""
        if int(conf.get("preserve_n", 0)) < 0:
            raise ValueError("preserve_n must not be negative")

    def initialize(self, control, state, conf=None):
        """Take preserve_n, and configure the control as the original's engine guide said."""
        control.configure({"timed-pulse-irregular": 800})
        self.preserve_n = int(conf.get("preserve_n", 0))

    def decide(self, control, state):
        """Replace the unhealthy ones and keep preserve_n."""
        for inst in state.get_unhealthy_instances():
            control.destroy_instances([inst.instance_id])
        healthy = [i for i in state.get_healthy_instances() if i.state < "700-TERMINATING"]
        self.seen.append(
            {
                "healthy": len(healthy),
                "pending": len(state.get_pending_instances()),
                "running": len(state.get_instances_by_state("600-RUNNING")),
                "sensors": dict(state.sensors),
                "health_not_checked": control.health_not_checked,
            }
        )
        for _ in range(self.preserve_n - len(healthy)):
            control.launch("dt", "site-a", "small")
        self.de_state = "STABLE_DE" if len(healthy) == self.preserve_n else "PENDING_DE"

    def reconfigure(self, control, newconf):
        """Take a new preserve_n."""
        self.preserve_n = int(newconf.get("preserve_n", self.preserve_n))
