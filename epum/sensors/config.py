"""The "config" sensor source: metrics given in the engine conf or the records.

Used for tests, demos and setups where something else pushes readings into
epum.  Lookup order for an instance: the engine conf's ``sensor_data``, then
the instance record's ``sensor_data``.  For the domain: the engine conf's
``domain_sensor_data``, then the domain's ``sensor_data`` (``state.sensor_data``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from epum.errors import BadRequestError
from epum.instances import DomainState
from epum.sensors.base import SensorSource, to_samples

log = logging.getLogger(__name__)

_DOC = """\
sensor_data (mapping, optional, sensor_type "config"): readings per instance,
    {instance_id: {metric: samples}}; they take precedence over the
    sensor_data of the instance records.
domain_sensor_data (mapping, optional, sensor_type "config"): readings for
    the whole domain, {metric: samples}; they take precedence over the
    domain's own sensor_data.  When the domain has a reading of the metric,
    it is used instead of the per-instance readings.
    samples: a number, a list of numbers, or {"Series": [numbers]}."""


def _check_metrics(where: str, metrics: Any) -> None:
    if not isinstance(metrics, Mapping):
        raise BadRequestError(f"{where} must be a mapping of metric to samples")
    for metric, value in metrics.items():
        if to_samples(value) is None:
            raise BadRequestError(
                f"{where}[{metric!r}] must be a number, a non-empty list of numbers"
                f' or {{"Series": [...]}}, not {value!r}'
            )


class ConfigSensorSource(SensorSource):
    """Readings from the engine conf, falling back to the records."""

    CONFIG_DOC = _DOC

    def __init__(self, conf: Mapping[str, Any]):
        self.validate_config(conf)
        self._per_instance: Mapping[str, Mapping[str, Any]] = conf.get("sensor_data") or {}
        self._domain: Mapping[str, Any] = conf.get("domain_sensor_data") or {}

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Check the shapes of ``sensor_data`` and ``domain_sensor_data``."""
        per_instance = conf.get("sensor_data")
        if per_instance is not None:
            if not isinstance(per_instance, Mapping):
                raise BadRequestError("sensor_data must be a mapping of instance id to metrics")
            for instance_id, metrics in per_instance.items():
                _check_metrics(f"sensor_data[{instance_id!r}]", metrics)
        domain = conf.get("domain_sensor_data")
        if domain is not None:
            _check_metrics("domain_sensor_data", domain)

    def instance_samples(
        self, metric: str, instance_ids: Sequence[str], state: DomainState
    ) -> dict[str, list[float]]:
        """Conf readings first, then each record's ``sensor_data``."""
        out: dict[str, list[float]] = {}
        for instance_id in instance_ids:
            samples = to_samples((self._per_instance.get(instance_id) or {}).get(metric))
            if samples is None:
                inst = state.instances.get(instance_id)
                data = inst.sensor_data if inst is not None else None
                if isinstance(data, Mapping):
                    samples = to_samples(data.get(metric))
            if samples is not None:
                out[instance_id] = samples
        return out

    def domain_samples(self, metric: str, state: DomainState) -> list[float] | None:
        """Conf reading first, then the domain's ``sensor_data``."""
        samples = to_samples(self._domain.get(metric))
        if samples is None:
            samples = to_samples(state.sensor_data.get(metric))
        return samples
