"""Simulation: one EPUM with a simulated cloud and agents, all in simulated time.

The facade runs in external-decide mode on the simulation's clock; each
``tick`` moves time on by ``tick_seconds`` and then, in this order, lets the
provisioner report, the agents heartbeat, the doctor judge (every
``doctor_every`` seconds) and the decider decide (every ``decide_every``
seconds).  Nothing sleeps, so an hour of simulated time takes well under a
second when nothing much happens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from epum.management import EPUManagement
from epum.sim.agents import SimAgents
from epum.sim.cloud import Delays, SimProvisioner
from epum.sim.stubs import SimClock, SimDTRS, SimNotifier
from epum.store.base import EPUMStore

#: The service name the simulated EPUM runs under (the agents' heartbeat_dest).
SERVICE_NAME = "epum_sim"


class Simulation:
    """EPUM, a ``SimProvisioner`` and ``SimAgents`` wired together on a ``SimClock``.

    ``conf`` is merged over the facade's initial conf (external-decide mode
    is always on).  ``store=None`` means the facade's own memory store.
    """

    def __init__(
        self,
        conf: dict[str, Any] | None = None,
        *,
        seed: int = 0,
        delays: Delays | None = None,
        failure_rates: dict[str, float] | None = None,
        heartbeat_interval: float = 5.0,
        tick_seconds: float = 1.0,
        decide_every: float = 1.0,
        doctor_every: float = 1.0,
        store: EPUMStore | None = None,
        start: float = 1_700_000_000.0,
    ):
        self.clock = SimClock(start)
        self.notifier = SimNotifier(self.clock)
        self.provisioner = SimProvisioner(delays=delays, failure_rates=failure_rates, seed=seed)
        self.agents = SimAgents(None, self.provisioner, interval=heartbeat_interval)
        initial = {"service_name": SERVICE_NAME}
        initial.update(conf or {})
        initial["_external_decide_invocations"] = True
        self.epum = EPUManagement(
            initial,
            self.notifier,
            self.provisioner,
            self.agents,
            SimDTRS(),
            store=store,
            clock=self.clock,
        )
        self.provisioner.sink = self.epum
        self.agents.sink = self.epum
        self.tick_seconds = tick_seconds
        self.decide_every = decide_every
        self.doctor_every = doctor_every
        self._last_decided: float | None = None
        self._last_doctored: float | None = None
        self.observers: list[Callable[[float], None]] = []

    def start(self) -> Simulation:
        """Initialize the facade; returns self."""
        self.epum.initialize()
        return self

    def stop(self) -> None:
        """Shut the facade down."""
        self.epum.shutdown()

    def __enter__(self) -> Simulation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def now(self) -> float:
        """The simulated time."""
        return self.clock()

    def tick(self) -> None:
        """Move time on by one tick and let every party act once.

        The observers are called after the reports and heartbeats, after the
        doctor and after the decider, so they see each role's effect.
        """
        now = self.clock.advance(self.tick_seconds)
        self.provisioner.step(now)
        self.agents.step(now)
        self._observe(now)
        if _due(self._last_doctored, now, self.doctor_every):
            self._last_doctored = now
            self.epum._doctor_appt(now)
            self._observe(now)
        if _due(self._last_decided, now, self.decide_every):
            self._last_decided = now
            self.epum._run_decisions()
            self._observe(now)

    def _observe(self, now: float) -> None:
        for observer in self.observers:
            observer(now)

    def run(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Tick for up to ``seconds`` of simulated time, stopping early once ``until()``.

        Returns True if ``until`` became true (always False without one).
        """
        end = self.clock() + seconds
        while self.clock() + self.tick_seconds <= end + 1e-9:
            self.tick()
            if until is not None and until():
                return True
        return False

    def decide_now(self) -> None:
        """Run one decider pass at once (outside the tick schedule)."""
        self._last_decided = self.clock()
        self.epum._run_decisions()


def _due(last: float | None, now: float, every: float) -> bool:
    return last is None or now - last >= every - 1e-9
