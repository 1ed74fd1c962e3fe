"""The sensor engine: scale a domain between bounds on a metric's thresholds.

It follows the original engine: every key is optional; at each pass the size
it aims for is the number of counted instances plus the scaling step (see
``epum.engines.scaling``), brought within the bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from epum.engines import scaling, uniques
from epum.engines.base import EngineControl
from epum.engines.common import aim, healthy_live
from epum.engines.confcheck import get_int, get_str_list, require_mapping
from epum.engines.configured import ConfiguredEngine
from epum.engines.keeper import LaunchSpec, keep_size, missing_launch_keys
from epum.engines.scaling import Cooldown, ScalingConf, decide_step
from epum.engines.uniques import UniqueValues
from epum.errors import BadRequestError
from epum.instances import DomainState

CONFIG_DOC = f"""\
SensorEngine keeps between minimum_vms and maximum_vms instances and scales on
a metric, as the original sensor engine did.  Every key is optional: a
domain with only minimum_vms and maximum_vms keeps the minimum and never
scales.

minimum_vms (integer >= 0, default 0), maximum_vms (integer >= 0, default
    0): the bounds.  At each pass the size aimed for is the number of
    counted (live, healthy) instances plus the scaling step, raised to
    minimum_vms and then, unless that is below minimum_vms, lowered to
    maximum_vms (so the minimum wins when maximum_vms is smaller, as in the
    original).  The bounds hold during a cooldown too.
{scaling.CONFIG_DOC}
deployable_type, iaas_site, iaas_allocation (strings): what and where to
    launch; required when the domain may hold instances (the original failed
    at launch time without them; epum refuses the config instead).
    iaas_site and iaas_allocation default to the service-wide
    needy_default_iaas_site and needy_default_iaas_allocation.
retirable_nodes (list of instance ids, or a comma-separated string): the
    instances to terminate first when scaling down.
{uniques.CONFIG_DOC}
    When every value is held, further instances are launched with the value
    None, as the original sensor engine did."""

#: LaunchSpec fields and the keys that give them.
LAUNCH_KEYS = {
    "deployable_type": "deployable_type",
    "site": "iaas_site",
    "allocation": "iaas_allocation",
}


@dataclass(frozen=True)
class SensorConf:
    """The checked config of a sensor engine."""

    minimum_vms: int
    maximum_vms: int
    scaling: ScalingConf
    spec: LaunchSpec
    retirable: tuple[str, ...]
    uniques: UniqueValues | None

    @classmethod
    def parse(cls, conf: Mapping[str, Any]) -> SensorConf:
        """Check ``conf``; raise ``BadRequestError`` naming the first bad key."""
        conf = require_mapping(conf)
        parsed = cls(
            minimum_vms=get_int(conf, "minimum_vms", default=0, minimum=0),
            maximum_vms=get_int(conf, "maximum_vms", default=0, minimum=0),
            scaling=ScalingConf.parse(conf),
            spec=LaunchSpec.from_iaas_keys(conf),
            retirable=tuple(get_str_list(conf, "retirable_nodes")),
            uniques=UniqueValues.from_conf(conf),
        )
        missing = missing_launch_keys(parsed.spec, LAUNCH_KEYS)
        if missing and max(parsed.minimum_vms, parsed.maximum_vms) > 0:
            raise BadRequestError(
                f"{', '.join(missing)} required to launch (the domain may hold up to"
                f" {max(parsed.minimum_vms, parsed.maximum_vms)} instances); give them in"
                " engine_conf (iaas_site and iaas_allocation may also come from the"
                " service's needy_default_iaas_site and needy_default_iaas_allocation)"
            )
        return parsed

    def summary(self) -> str:
        """The bounds."""
        return f"minimum_vms={self.minimum_vms} maximum_vms={self.maximum_vms}"

    def bound(self, n: int) -> int:
        """``n`` within the bounds, the minimum winning (the original's order)."""
        return max(min(self.maximum_vms, n), self.minimum_vms)


class SensorEngine(ConfiguredEngine[SensorConf]):
    """Scales on a metric between bounds, with a cooldown; see ``get_config_doc``.

    The time of the last scaling step lives in memory: an engine built anew
    (another decider) starts without a cooldown.
    """

    Conf = SensorConf
    CONFIG_DOC = CONFIG_DOC
    #: ``iaas_site``, when the config (or the service default) names one.
    SITE_KEY = "iaas_site"

    def __init__(self) -> None:
        super().__init__()
        self.cooldown = Cooldown()

    def configured(self) -> None:
        """Warn of a metric that cannot scale for want of a statistic."""
        conf = self.current_conf()
        if conf.scaling.metric and not conf.scaling.statistic:
            self.log.warning("metric without sample_function: not scaling (as the original)")

    def decide(self, control: EngineControl, state: DomainState) -> None:
        """Scale on the metric unless cooling down, then keep the size within the bounds."""
        conf = self.current_conf()
        live = healthy_live(control, state, self.tracker, self.log)
        step = decide_step(control, self.cooldown, conf.scaling, state, live, conf.bound)
        if step:
            self.log.info(
                "%s %s: scaling by %+d", conf.scaling.metric, conf.scaling.statistic, step
            )
        aim(
            control,
            conf.bound(len(live) + step),
            minimum=conf.minimum_vms,
            maximum=conf.maximum_vms,
            cooldown_left=self._cooldown_left(state.now),
            counted=len(live),
        )
        self.de_state = keep_size(
            control,
            state,
            self.tracker,
            conf.bound(len(live) + step),
            conf.spec,
            retirable=conf.retirable,
            uniques=conf.uniques,
            logger=self.log,
            none_when_out=True,
        )

    def _cooldown_left(self, now: float) -> float:
        """Seconds of cooldown left at ``now`` (0 when not cooling)."""
        last = self.cooldown.last
        period = self.current_conf().scaling.cooldown
        return 0.0 if last is None else round(max(0.0, last + period - now), 3)
