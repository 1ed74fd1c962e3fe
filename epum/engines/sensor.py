"""The sensor engine: scale a domain between bounds on a metric's thresholds."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from epum.engines import uniques
from epum.engines.base import Engine, EngineControl
from epum.engines.common import DestroyTracker, healthy_live
from epum.engines.confcheck import (
    get_int,
    get_number,
    get_str,
    get_str_list,
    named_site,
    require_mapping,
)
from epum.engines.keeper import LaunchSpec, keep_size
from epum.engines.uniques import UniqueValues
from epum.errors import BadRequestError
from epum.instances import DomainState, Instance
from epum.sensors import SensorSource, get_sensor_source, sample_function, sensor_config_doc
from epum.states import InstanceState

#: Why 300 s: long enough for new instances to boot and report readings.
DEFAULT_COOLDOWN = 300.0

CONFIG_DOC = f"""\
SensorEngine keeps between minimum_vms and maximum_vms instances and scales on
a metric: above scale_up_threshold it adds scale_up_n_vms instances, below
scale_down_threshold it removes scale_down_n_vms (retirable ones first).

minimum_vms (integer >= 0, required), maximum_vms (integer >= minimum_vms,
    required): the bounds, always enforced.  At start the wanted size is the
    number of live instances, brought within the bounds.
metric (string, required): the metric to read.  Its value is the domain's
    own reading when there is one, else the average over the valid instances
    (RUNNING, healthy, with a reading) of sample_function over each one's
    samples.  Instances without readings are skipped; with no reading at all
    the domain does not scale (the bounds still hold).
sample_function (Average | Sum | Max | Min, default Average).
scale_up_threshold, scale_down_threshold (numbers, required, down <= up):
    the value must be strictly above / below them.
scale_up_n_vms, scale_down_n_vms (integers >= 1, default 1).
cooldown_period (seconds >= 0, default {DEFAULT_COOLDOWN:g}): after a scaling
    step nothing more scales until the decision time reaches the step's time
    plus this period.
deployable_type, iaas_site, iaas_allocation (strings, optional): what and
    where to launch.
retirable_nodes (list of instance ids, or a comma-separated string): the
    instances to terminate first when scaling down.
{uniques.CONFIG_DOC}
{sensor_config_doc()}"""


@dataclass(frozen=True)
class SensorConf:
    """The checked config of a sensor engine."""

    minimum_vms: int
    maximum_vms: int
    metric: str
    sample_function: Callable[[Sequence[float]], float]
    cooldown: float
    up_threshold: float
    up_n: int
    down_threshold: float
    down_n: int
    spec: LaunchSpec
    retirable: tuple[str, ...]
    uniques: UniqueValues | None
    source: SensorSource

    @classmethod
    def parse(cls, conf: Mapping[str, Any]) -> SensorConf:
        """Check ``conf``; raise ``BadRequestError`` naming the first bad key."""
        conf = require_mapping(conf)
        minimum = get_int(conf, "minimum_vms", required=True, minimum=0)
        maximum = get_int(conf, "maximum_vms", required=True, minimum=0)
        if maximum < minimum:
            raise BadRequestError(f"maximum_vms ({maximum}) must be >= minimum_vms ({minimum})")
        up = get_number(conf, "scale_up_threshold", required=True)
        down = get_number(conf, "scale_down_threshold", required=True)
        if down > up:
            raise BadRequestError(
                f"scale_down_threshold ({down:g}) must not be above scale_up_threshold ({up:g})"
            )
        return cls(
            minimum_vms=minimum,
            maximum_vms=maximum,
            metric=get_str(conf, "metric", required=True),
            sample_function=sample_function(conf.get("sample_function") or "Average"),
            cooldown=get_number(conf, "cooldown_period", default=DEFAULT_COOLDOWN, minimum=0),
            up_threshold=up,
            up_n=get_int(conf, "scale_up_n_vms", default=1, minimum=1),
            down_threshold=down,
            down_n=get_int(conf, "scale_down_n_vms", default=1, minimum=1),
            spec=LaunchSpec(
                deployable_type=get_str(conf, "deployable_type"),
                site=get_str(conf, "iaas_site"),
                allocation=get_str(conf, "iaas_allocation"),
            ),
            retirable=tuple(get_str_list(conf, "retirable_nodes")),
            uniques=UniqueValues.from_conf(conf),
            source=get_sensor_source(conf),
        )

    def bound(self, n: int) -> int:
        """``n`` brought within minimum_vms..maximum_vms."""
        return max(self.minimum_vms, min(self.maximum_vms, n))


class SensorEngine(Engine):
    """Scales on a metric between bounds, with a cooldown; see ``get_config_doc``.

    ``wanted`` is the size the engine keeps; ``last_scale_time`` the decision
    time of the last scaling step (None before the first).  Both live in
    memory: an engine built anew (another decider) starts from the number of
    live instances and without a cooldown.
    """

    def __init__(self) -> None:
        self.conf: SensorConf | None = None
        self.wanted = 0
        self.last_scale_time: float | None = None
        self._tracker = DestroyTracker()

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Raise ``BadRequestError`` naming the first bad key of ``conf``."""
        SensorConf.parse(conf)

    @classmethod
    def sites(cls, conf: dict[str, Any]) -> list[str]:
        """``iaas_site``, when the config (or the service default) names one."""
        return named_site(conf, "iaas_site")

    @classmethod
    def get_config_doc(cls) -> str:
        """Every config key of this engine and of its sensor sources."""
        return CONFIG_DOC

    def initialize(self, control: EngineControl, state: DomainState, conf: dict[str, Any]) -> None:
        """Take the config; start from the live count, within the bounds."""
        self.conf = SensorConf.parse(conf)
        self.wanted = self.conf.bound(len(state.get_live_instances()))

    def reconfigure(self, control: EngineControl, newconf: dict[str, Any]) -> None:
        """Take the merged config and bring the wanted size within new bounds."""
        self.conf = SensorConf.parse(newconf)
        self.wanted = self.conf.bound(self.wanted)
        self.log.info("reconfigured: wanted=%d", self.wanted)

    def decide(self, control: EngineControl, state: DomainState) -> None:
        """Scale on the metric unless cooling down, then keep the wanted size."""
        conf = self.conf
        if conf is None:
            raise RuntimeError("SensorEngine.decide called before initialize")
        live = healthy_live(control, state, self._tracker, self.log)
        self._scale(conf, state, live)
        self.de_state = keep_size(
            control,
            state,
            self._tracker,
            self.wanted,
            conf.spec,
            retirable=conf.retirable,
            uniques=conf.uniques,
            logger=self.log,
        )

    def dying(self) -> None:
        """Forget what the engine was tracking."""
        self._tracker.forget()

    def metric_value(self, state: DomainState, live: Sequence[Instance]) -> float | None:
        """The metric's value now (see the config doc), or None without readings."""
        conf = self.conf
        domain = conf.source.domain_samples(conf.metric, state)
        if domain:
            return conf.sample_function(domain)
        valid = [i.instance_id for i in live if i.state == InstanceState.RUNNING]
        per_instance = conf.source.instance_samples(conf.metric, valid, state)
        values = [conf.sample_function(s) for s in per_instance.values() if s]
        return sum(values) / len(values) if values else None

    def _scale(self, conf: SensorConf, state: DomainState, live: Sequence[Instance]) -> None:
        if self.last_scale_time is not None and state.now < self.last_scale_time + conf.cooldown:
            return
        value = self.metric_value(state, live)
        if value is None:
            self.log.debug("no reading of %s; not scaling", conf.metric)
            return
        before = self.wanted
        if value > conf.up_threshold:
            self.wanted = conf.bound(before + conf.up_n)
        elif value < conf.down_threshold:
            self.wanted = conf.bound(before - conf.down_n)
        if self.wanted != before:
            self.last_scale_time = state.now
            self.log.info(
                "%s=%g: scaling from %d to %d instances", conf.metric, value, before, self.wanted
            )
