"""Pick the sensor source an engine conf asks for (key ``sensor_type``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from epum.errors import BadRequestError
from epum.sensors.base import SensorSource
from epum.sensors.cloudwatch import CloudWatchSensorSource
from epum.sensors.config import ConfigSensorSource
from epum.sensors.credentials import SensorCredentials
from epum.sensors.opentsdb import OpenTSDBSensorSource
from epum.sensors.polled import POLLING_DOC, PolledSensorSource
from epum.sensors.prometheus import PrometheusSensorSource
from epum.sensors.rabbitmq import RabbitMQSensorSource

#: The engine conf key that selects the source, and its default.
SENSOR_TYPE_KEY = "sensor_type"
DEFAULT_SENSOR_TYPE = "config"

#: Sensor types and their sources.
SENSOR_TYPES: dict[str, type[SensorSource]] = {
    "config": ConfigSensorSource,
    # the original's test source read its readings from the engine conf's
    # sensor_data, exactly as "config" does
    "mockcloudwatch": ConfigSensorSource,
    "prometheus": PrometheusSensorSource,
    "rabbitmq": RabbitMQSensorSource,
    "cloudwatch": CloudWatchSensorSource,
    "opentsdb": OpenTSDBSensorSource,
}


def _source_class(conf: Mapping[str, Any]) -> type[SensorSource]:
    name = conf.get(SENSOR_TYPE_KEY)
    if name is None:
        name = DEFAULT_SENSOR_TYPE
    if not isinstance(name, str) or name not in SENSOR_TYPES:
        raise BadRequestError(
            f"{SENSOR_TYPE_KEY} must be one of {', '.join(sorted(SENSOR_TYPES))}, not {name!r}"
        )
    return SENSOR_TYPES[name]


def validate_sensor_conf(conf: Mapping[str, Any]) -> None:
    """Raise ``BadRequestError`` for an unknown ``sensor_type`` or bad source keys."""
    _source_class(conf).validate_config(conf)


def get_sensor_source(
    conf: Mapping[str, Any], credentials: SensorCredentials | None = None
) -> SensorSource:
    """The source ``conf`` selects, built from ``conf`` (checked first).

    ``credentials`` (the worker's) go to the polled sources; an engine
    builds its source without them, since it only reads stored readings.
    """
    cls = _source_class(conf)
    if issubclass(cls, PolledSensorSource):
        return cls(conf, credentials)
    return cls(conf)


def is_polled(conf: Mapping[str, Any]) -> bool:
    """True when ``conf`` names a ``sensor_type`` whose readings the collector fetches."""
    name = conf.get(SENSOR_TYPE_KEY)
    cls = SENSOR_TYPES.get(name) if isinstance(name, str) else None
    return cls is not None and issubclass(cls, PolledSensorSource)


def sensor_config_doc() -> str:
    """Documentation of ``sensor_type`` and of every source's keys."""
    lines = [
        f"{SENSOR_TYPE_KEY} (string, default {DEFAULT_SENSOR_TYPE!r}): where metrics come"
        f" from; one of {', '.join(sorted(SENSOR_TYPES))}."
    ]
    docs = {cls.CONFIG_DOC for cls in SENSOR_TYPES.values() if cls.CONFIG_DOC}
    lines += [*sorted(docs), POLLING_DOC]
    return "\n".join(lines)
