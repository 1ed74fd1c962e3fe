"""Scaling on a metric, as the original sensor and multi-site engines did.

``ScalingConf`` reads the sensor keys of an engine conf; ``scale_by`` says
by how many instances to grow (positive) or shrink (negative) now.  The
rules, and where they follow the original:

- scaling needs both ``metric`` and ``sample_function``; without either the
  domain never scales (the original's defaults were None);
- ``sample_function`` names the statistic to read: ``Average``,
  ``Maximum``, ``Minimum``, ``Sum``, ``SampleCount`` (case-insensitive;
  ``Max``/``Min`` also work).  An instance's value is the number its
  record's ``sensor_data[metric][sample_function]`` holds (the shape the
  original's sensor aggregator wrote), else that statistic computed over
  the samples its sensor source returns;
- the value compared with the thresholds is the original's average: the sum
  of the values of the counted (live, healthy) instances divided by the
  number of counted instances, so an instance without a reading counts as 0
  (with ``domain_reading``, the domain's own value is one more term, as the
  multi-site engine did); when no counted instance has a reading and the
  domain has one (a metric only the domain has, such as a work queue's
  ``backlog`` from the rabbitmq source), the sensor engine compares the
  domain's value as it is;
- a missing threshold means no scaling in that direction; ``scale_up_n_vms``
  and ``scale_down_n_vms`` default to 0 (the original's), and a negative
  ``scale_down_n_vms`` means the same as its absolute value;
- ``cooldown_period`` (seconds, default 0 as in the original) starts at each
  scaling step; during it the metric is not looked at;
- ``sensor_error_policy`` (new): when there is no fresh reading at all (no
  counted instance and not the domain has one, e.g. the metrics server is
  down and the stored readings went stale), ``hold`` (default) takes no
  scaling step and ``fallback`` aims for ``fallback_size`` instances
  (KEDA's fallback); the engine's bounds hold either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from epum.engines.base import EngineControl
from epum.engines.common import clock_time, explain, observe
from epum.engines.confcheck import get_int, get_number, get_str
from epum.errors import BadRequestError
from epum.instances import DomainState, Instance
from epum.sensors import SensorSource, get_sensor_source, sensor_config_doc

Statistic = Callable[[Sequence[float]], float]

#: ``sensor_error_policy`` values: what to do without any fresh reading.
ERROR_POLICIES = ("hold", "fallback")

#: The original's statistic names, to how each is computed from samples.
STATISTICS: dict[str, Statistic] = {
    "Average": lambda xs: sum(xs) / len(xs),
    "Maximum": lambda xs: float(max(xs)),
    "Minimum": lambda xs: float(min(xs)),
    "Sum": lambda xs: float(sum(xs)),
    "SampleCount": lambda xs: float(len(xs)),
}

_ALIASES = {"max": "Maximum", "min": "Minimum"}

CONFIG_DOC = f"""\
metric (string, optional): the metric to scale on.
sample_function (Average | Maximum | Minimum | Sum | SampleCount, optional):
    the statistic of the metric to read.  Without metric or sample_function
    the domain never scales.  The value compared with the thresholds is the
    average of the statistic over the counted instances, an instance without
    a reading counting as 0 (the original's rule); when no instance has a
    reading, the sensor engine compares the domain's own reading (e.g. the
    rabbitmq source's backlog) as it is.
scale_up_threshold, scale_down_threshold (numbers, optional): scale up when
    the value is strictly above the first, down when strictly below the
    second; a missing threshold means no scaling that way.
scale_up_n_vms, scale_down_n_vms (integers, default 0): instances added or
    removed per step (a negative scale_down_n_vms counts as positive).
cooldown_period (seconds >= 0, default 0): after a scaling step the metric
    is not looked at again until this much time has passed.
sensor_error_policy (hold | fallback, default hold): what to do while no
    counted instance and not the domain has a fresh reading (the source
    fails, or its readings are stale): hold takes no scaling step, fallback
    aims for fallback_size instances.  The bounds hold either way.
fallback_size (integer >= 0, required with fallback): the size aimed for
    under the fallback policy.
{sensor_config_doc()}"""


def statistic_name(value: Any) -> str:
    """The canonical statistic name for ``value``, else BadRequestError."""
    if isinstance(value, str):
        text = value.strip().lower()
        for name in STATISTICS:
            if name.lower() == text:
                return name
        if text in _ALIASES:
            return _ALIASES[text]
    raise BadRequestError(f"sample_function must be one of {', '.join(STATISTICS)}, not {value!r}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def reading(data: Any, metric: str, statistic: str) -> float | None:
    """``data[metric][statistic]`` when it is a number (the original's shape), else None."""
    if not isinstance(data, Mapping):
        return None
    entry = data.get(metric)
    return _number(entry.get(statistic)) if isinstance(entry, Mapping) else None


@dataclass(frozen=True)
class ScalingConf:
    """The sensor keys of an engine conf, checked."""

    metric: str | None
    statistic: str | None
    up_threshold: float | None
    up_n: int
    down_threshold: float | None
    down_n: int
    cooldown: float
    source: SensorSource
    error_policy: str = "hold"
    fallback_size: int | None = None

    @classmethod
    def parse(cls, conf: Mapping[str, Any]) -> ScalingConf:
        """Check the sensor keys of ``conf``; BadRequestError names the first bad one."""
        raw = conf.get("sample_function")
        down_n = get_int(conf, "scale_down_n_vms", default=0)
        policy = conf.get("sensor_error_policy", "hold")
        if policy not in ERROR_POLICIES:
            raise BadRequestError(
                f"sensor_error_policy must be one of {', '.join(ERROR_POLICIES)}, not {policy!r}"
            )
        fallback = get_int(conf, "fallback_size", minimum=0)
        if policy == "fallback" and fallback is None:
            raise BadRequestError("fallback_size is required with sensor_error_policy fallback")
        return cls(
            metric=get_str(conf, "metric"),
            statistic=None if raw in (None, "") else statistic_name(raw),
            up_threshold=get_number(conf, "scale_up_threshold"),
            up_n=get_int(conf, "scale_up_n_vms", default=0, minimum=0),
            down_threshold=get_number(conf, "scale_down_threshold"),
            down_n=abs(down_n),
            cooldown=get_number(conf, "cooldown_period", default=0.0, minimum=0),
            source=get_sensor_source(conf),
            error_policy=policy,
            fallback_size=fallback,
        )

    @property
    def enabled(self) -> bool:
        """Whether this conf can scale at all."""
        return bool(self.metric and self.statistic)

    def instance_value(self, inst: Instance, state: DomainState) -> float | None:
        """One instance's value of the statistic, or None without a reading."""
        value = reading(inst.sensor_data, self.metric, self.statistic)
        if value is not None:
            return value
        samples = self.source.instance_samples(self.metric, [inst.instance_id], state)
        found = samples.get(inst.instance_id)
        return STATISTICS[self.statistic](found) if found else None

    def domain_value(self, state: DomainState) -> float | None:
        """The domain's own value of the statistic, or None."""
        value = reading(state.sensor_data, self.metric, self.statistic)
        if value is not None:
            return value
        samples = self.source.domain_samples(self.metric, state)
        return STATISTICS[self.statistic](samples) if samples else None

    def _values(
        self, state: DomainState, counted: Sequence[Instance], domain_reading: bool
    ) -> list[float]:
        values = [v for v in (self.instance_value(i, state) for i in counted) if v is not None]
        if domain_reading:
            domain = self.domain_value(state)
            if domain is not None:
                values.append(domain)
        return values

    def average(
        self, state: DomainState, counted: Sequence[Instance], domain_reading: bool = False
    ) -> float | None:
        """The original's average (see the module doc); None with nothing to average."""
        values = self._values(state, counted, domain_reading)
        if not values and not domain_reading:
            # a metric only the domain has (a work queue's backlog): as it is
            return self.domain_value(state)
        divisor = max(len(values), len(counted))
        return sum(values) / divisor if divisor else None

    def scale_by(
        self, state: DomainState, counted: Sequence[Instance], domain_reading: bool = False
    ) -> tuple[int, float | None]:
        """How many instances to add (or, negative, remove) now, and the value seen."""
        if not self.enabled:
            return 0, None
        values = self._values(state, counted, domain_reading)
        if not values and not domain_reading:
            domain = self.domain_value(state)
            values = [] if domain is None else [domain]
        if not values:
            # no fresh reading at all: the sensor_error_policy decides
            if self.error_policy == "fallback" and self.fallback_size is not None:
                return self.fallback_size - len(counted), None
            return 0, None
        value = self.average(state, counted, domain_reading)
        if value is None:
            return 0, None
        if self.up_threshold is not None and value > self.up_threshold:
            return self.up_n, value
        if self.down_threshold is not None and value < self.down_threshold:
            return -self.down_n, value
        return 0, value


class Cooldown:
    """When the last scaling step was, and whether the metric may be read again."""

    def __init__(self) -> None:
        self.last: float | None = None

    def cooling(self, now: float, period: float) -> bool:
        """True while ``now`` is within ``period`` seconds of the last step."""
        return self.last is not None and now < self.last + period

    def stepped(self, now: float) -> None:
        """A scaling step happened at ``now``."""
        self.last = now


def decide_step(
    control: EngineControl,
    cooldown: Cooldown,
    conf: ScalingConf,
    state: DomainState,
    counted: Sequence[Instance],
    bound: Callable[[int], int],
    domain_reading: bool = False,
) -> int:
    """The scaling step to take now (0 for none); starts the cooldown at each step.

    The rules are the module doc's; besides, the decision log is told why a
    step the metric asks for is not taken (in cooldown, at a bound, no
    reading).  To say so the metric is read during the cooldown too, but
    it changes nothing then.
    """
    if not conf.enabled:
        return 0
    step, value = conf.scale_by(state, counted, domain_reading)
    observe(control, metric=conf.metric, value=value)
    if value is None and step == 0:
        explain(control, "no_reading", f"no scaling: no fresh reading of {conf.metric}")
        return 0
    if step == 0:
        return 0
    way = "scale-up" if step > 0 else "scale-down"
    if cooldown.cooling(state.now, conf.cooldown):
        last = cooldown.last or 0.0
        left = last + conf.cooldown - state.now
        explain(
            control,
            "cooldown",
            f"no {way}: in cooldown for {left:.0f} s more (last step {clock_time(last)})",
        )
        return 0
    cooldown.stepped(state.now)
    if value is None:  # sensor_error_policy fallback: aim for fallback_size
        seen = f"no fresh reading of {conf.metric} (sensor_error_policy fallback)"
    else:
        seen = f"{conf.metric} {conf.statistic}={value:g}"
    if bound(len(counted) + step) == len(counted):
        code, limit = ("at_maximum", "maximum") if step > 0 else ("at_minimum", "minimum")
        explain(control, code, f"no {way}: {seen}, but at the {limit} ({len(counted)})")
    elif value is None:
        explain(control, "fallback", f"{seen}: scaling by {step:+d} toward fallback_size")
    else:
        threshold = conf.up_threshold if step > 0 else conf.down_threshold
        side = "above" if step > 0 else "below"
        explain(control, "scale", f"{seen} {side} {threshold:g}: scaling by {step:+d}")
    return step
