"""Keep a domain at a wanted size: the shared pass of the one-site engines.

``keep_size`` destroys unhealthy instances, then launches or destroys so that
exactly ``wanted`` instances count (see ``epum.engines.common`` for the
counting rule), and says how the domain stands afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from epum.engines.base import EngineControl
from epum.engines.common import (
    DestroyTracker,
    Log,
    aim,
    explain,
    healthy_live,
    judge,
    pick_victims,
)
from epum.engines.confcheck import get_str
from epum.engines.uniques import UniqueValues
from epum.instances import DomainState
from epum.states import DecisionEngineState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchSpec:
    """Where and what to launch; None fields are left to the provisioner."""

    deployable_type: str | None = None
    site: str | None = None
    allocation: str | None = None

    @classmethod
    def from_iaas_keys(cls, conf: Mapping[str, Any]) -> LaunchSpec:
        """The spec named by ``deployable_type``, ``iaas_site`` and ``iaas_allocation``."""
        return cls(
            deployable_type=get_str(conf, "deployable_type"),
            site=get_str(conf, "iaas_site"),
            allocation=get_str(conf, "iaas_allocation"),
        )


def keep_size(
    control: EngineControl,
    state: DomainState,
    tracker: DestroyTracker,
    wanted: int,
    spec: LaunchSpec,
    retirable: Iterable[str] = (),
    uniques: UniqueValues | None = None,
    logger: Log = log,
    none_when_out: bool = False,
) -> str:
    """Bring the domain to ``wanted`` counted instances; return the engine state.

    Too many: destroy the surplus, chosen by ``pick_victims`` (``retirable``
    ids first).  Too few: launch the difference in one request, or, with
    ``uniques``, one request per instance each with a free value.  When the
    values run out, the rest is not launched and the state is DEVIATING
    (the original needy engine), or with ``none_when_out`` the rest is
    launched with the value None (the original sensor engine).
    """
    live = healthy_live(control, state, tracker, logger)
    aim(control, wanted, counted=len(live))
    if len(live) > wanted:
        victims = pick_victims(live, len(live) - wanted, retirable)
        tracker.destroy(control, victims, f"{len(live)} instances, {wanted} wanted", logger)
        gone = {i.instance_id for i in victims}
        live = [i for i in live if i.instance_id not in gone]
    missing = wanted - len(live)
    if missing <= 0:
        return judge(live, wanted, state.instances.values())
    if uniques is None:
        logger.info("%d instances, %d wanted: asking for %d more", len(live), wanted, missing)
        explain(
            control,
            "launch",
            f"{len(live)} instances, {wanted} wanted; {spec.site}: the configured site",
        )
        control.launch(spec.deployable_type, spec.site, spec.allocation, count=missing)
        return judge(live, wanted, state.instances.values())
    free = uniques.free_values(state.get_live_instances())
    values = free[:missing]
    if len(values) < missing and none_when_out:
        logger.warning(
            "%s: no unused value left; launching %d instance(s) with %s=None",
            uniques.key,
            missing - len(values),
            uniques.key,
        )
        values += [None] * (missing - len(values))
    for value in values:
        logger.info("asking for an instance with %s=%s", uniques.key, value)
        explain(
            control,
            "launch",
            f"{len(live)} instances, {wanted} wanted; {spec.site}: the configured site;"
            f" {uniques.key}={value}",
        )
        control.launch(
            spec.deployable_type,
            spec.site,
            spec.allocation,
            count=1,
            extravars={uniques.key: value},
        )
    if len(values) < missing:
        logger.warning(
            "%s: no unused value left for %d more instance(s); not launching them",
            uniques.key,
            missing - len(values),
        )
        explain(
            control,
            "no_values",
            f"no launch of {missing - len(values)} more: no unused {uniques.key} value left",
        )
        return DecisionEngineState.DEVIATING
    return judge(live, wanted, state.instances.values())


def missing_launch_keys(spec: LaunchSpec, names: dict[str, str]) -> list[str]:
    """The config keys (``names``: LaunchSpec field -> key) whose value ``spec`` lacks."""
    return [key for fieldname, key in names.items() if getattr(spec, fieldname) is None]
