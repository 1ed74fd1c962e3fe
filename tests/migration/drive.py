"""Driving one domain of a facade in external-decide mode, as the migration tests do.

``Driven`` wraps a ``Scenario`` (facade, fake provisioner, fake cloud, hand
clock) around one domain.  A ``step`` plays what the original engine tests
did with their mock control: bring every requested instance to RUNNING,
give the live ones a sensor reading (the original's record shape,
``{metric: {"Series": [...], "<statistic>": value}}``), run one decider pass,
confirm the terminations, and report the domain's size.
"""

from __future__ import annotations

from typing import Any

from epum.states import InstanceState
from tests.unit.scenario import Scenario

OWNER = "migrating"
DOMAIN = "dom"


class Driven:
    """One domain made from ``definition`` and ``config``, and the means to run it."""

    def __init__(
        self,
        definition: dict[str, Any],
        config: dict[str, Any] | None = None,
        service_conf: dict[str, Any] | None = None,
    ):
        self.sc = Scenario(service_conf)
        self.epum = self.sc.epum
        self.epum.msg_add_domain_definition("def", definition)
        self.epum.msg_add_domain(OWNER, DOMAIN, "def", config or {})

    def close(self) -> None:
        """Shut the facade down."""
        self.epum.shutdown()

    # -- looking ---------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every instance record of the domain."""
        return self.epum.msg_describe_domain(OWNER, DOMAIN)["instances"]

    def live(self, site: str | None = None) -> list[dict[str, Any]]:
        """The records before TERMINATING (of ``site`` when given)."""
        return [
            r
            for r in self.records()
            if r["state"] < InstanceState.TERMINATING and (site is None or r["site"] == site)
        ]

    def size(self, site: str | None = None) -> int:
        """How many live instances (on ``site``)."""
        return len(self.live(site))

    def per_site(self) -> dict[str, int]:
        """Live instances per site."""
        counts: dict[str, int] = {}
        for r in self.live():
            counts[r["site"]] = counts.get(r["site"], 0) + 1
        return counts

    @property
    def provisioned(self) -> list[dict[str, Any]]:
        """Every provision request the facade sent."""
        return self.sc.provisioner.provisioned

    @property
    def terminated(self) -> list[str]:
        """Every instance id the facade asked to terminate."""
        return self.sc.provisioner.terminated

    # -- acting ----------------------------------------------------------------
    def decide(self, seconds: float = 1.0) -> int:
        """Advance the clock, run one decider pass, confirm terminations; the size after."""
        self.sc.clock.advance(seconds)
        self.epum._run_decisions()
        self.sc.cloud.terminate_all()
        return self.size()

    def run_all(self) -> None:
        """Bring every requested instance to RUNNING."""
        self.sc.cloud.run_all()

    def read(self, metric: str, series: list[float], statistic: str = "Average") -> None:
        """Give every live instance a reading of ``metric`` in the original's shape."""
        value = {
            "Sum": sum(series),
            "Maximum": max(series),
            "Minimum": min(series),
            "SampleCount": len(series),
        }.get(statistic, sum(series) / len(series))
        for r in self.live():
            self.sc.cloud.report(
                r["instance_id"],
                r["state"],
                sensor_data={metric: {"Series": list(series), statistic: value}},
            )

    def fail(self, instance_id: str) -> None:
        """The provisioner reports the instance FAILED."""
        self.sc.cloud.report(instance_id, InstanceState.FAILED)

    def step(self, metric: str | None = None, series: list[float] | None = None) -> int:
        """Run all, give readings (if any), decide; the size after."""
        self.run_all()
        if metric is not None:
            self.read(metric, series)
        return self.decide()

    def reconfigure(self, engine_conf: dict[str, Any]) -> None:
        """``reconfigure_domain`` with these engine_conf keys."""
        self.epum.msg_reconfigure_domain(OWNER, DOMAIN, {"engine_conf": engine_conf})
