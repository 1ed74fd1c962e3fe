"""Where metrics come from: the sensor source interface and its factory."""

from epum.sensors.base import SAMPLE_FUNCTIONS, SensorSource, sample_function, to_samples
from epum.sensors.factory import (
    DEFAULT_SENSOR_TYPE,
    SENSOR_TYPE_KEY,
    SENSOR_TYPES,
    get_sensor_source,
    sensor_config_doc,
    validate_sensor_conf,
)

__all__ = [
    "DEFAULT_SENSOR_TYPE",
    "SAMPLE_FUNCTIONS",
    "SENSOR_TYPES",
    "SENSOR_TYPE_KEY",
    "SensorSource",
    "get_sensor_source",
    "sample_function",
    "sensor_config_doc",
    "to_samples",
    "validate_sensor_conf",
]
