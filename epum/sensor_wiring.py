"""Builds the sensor collector of a worker from its settings (``server.sensors``).

The sensors package may not import an AMQP library nor the store, and the
facade may not reach kombu; this module joins them: the worker's
``SensorCredentials`` (the worker hands in the AMQP queue probe over its own
broker settings) and a factory of ``SensorCollector`` for the decider's
terms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from epum.sensors.collector import SensorCollector
from epum.sensors.credentials import SensorCredentials
from epum.settings import SensorSettings

#: ``probe(vhost, queue) -> (ready, consumers)``: see ``epum.messaging.queue_probe``.
QueueProbe = Callable[[str, str], tuple[int, int]]


def sensor_credentials(
    sensors: SensorSettings, probe: QueueProbe | None = None
) -> SensorCredentials:
    """The credentials of ``sensors``, with ``probe`` as the AMQP queue probe when
    ``sensors.amqp_probe`` is on (the worker builds it: this module may not import kombu)."""
    probe = probe if sensors.amqp_probe else None
    return SensorCredentials(
        prometheus_username=sensors.prometheus_username,
        prometheus_password=sensors.prometheus_password,
        prometheus_bearer_token=sensors.prometheus_bearer_token,
        rabbitmq_username=sensors.rabbitmq_username,
        rabbitmq_password=sensors.rabbitmq_password,
        aws_access_key_id=sensors.aws_access_key_id,
        aws_secret_access_key=sensors.aws_secret_access_key,
        aws_region=sensors.aws_region,
        aws_endpoint_url=sensors.aws_endpoint_url,
        amqp_queue_probe=probe,
    )


def collector_factory(
    store: Any,
    sensors: SensorSettings,
    credentials: SensorCredentials | None = None,
    clock: Callable[[], float] = time.time,
    credentials_lookup: Any = None,
) -> Callable[[], SensorCollector] | None:
    """A factory of the term's collector, or None when ``sensors.enabled`` is off."""
    if not sensors.enabled:
        return None

    def make() -> SensorCollector:
        return SensorCollector(
            store,
            clock,
            credentials=credentials,
            credentials_lookup=credentials_lookup,
            min_period=sensors.min_sample_period,
            query_timeout=sensors.query_timeout,
        )

    return make
