"""The "rabbitmq" sensor source: a work queue's depth and consumers.

Read through the RabbitMQ management HTTP API (``/api/queues/<vhost>/<queue>``);
when that does not answer or has no statistics of the queue yet, through a
plain AMQP passive declare (ready messages and consumers only), if the worker
wired one (``SensorCredentials.amqp_queue_probe``).  Domain metrics, each one
sample:

- ``ready``, ``unacked``, ``consumers``, ``publish_rate``, ``deliver_rate``
  (messages per second, management API only);
- ``backlog`` = ready + unacked (work waiting plus work in hand), and
  ``backlog_per_consumer`` = backlog / max(consumers, 1): what an engine
  scales on to keep each worker's share of the queue bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from epum.errors import BadRequestError
from epum.sensors.credentials import SensorCredentials
from epum.sensors.polled import (
    PolledSensorSource,
    PollTarget,
    Readings,
    SensorQueryError,
    string_key,
    validate_polling_keys,
)

log = logging.getLogger(__name__)

DEFAULT_MANAGEMENT_URL = "http://127.0.0.1:15672"

_DOC = f"""\
rabbitmq_queue (string, sensor_type "rabbitmq"): the work queue to measure.
rabbitmq_vhost (string, default "/"): its virtual host.
rabbitmq_management_url (string, default {DEFAULT_MANAGEMENT_URL!r}): the
    management HTTP API; its user comes from the worker config.  When it does
    not answer, or has no statistics of the queue yet (a new queue's first
    seconds), ready and consumers are read by an AMQP passive declare.
    Metrics: ready, unacked, consumers, publish_rate, deliver_rate, backlog
    (ready + unacked) and backlog_per_consumer (backlog / consumers)."""


def _with_backlog(values: dict[str, float]) -> dict[str, list[float]]:
    backlog = values["ready"] + values.get("unacked", 0.0)
    values["backlog"] = backlog
    values["backlog_per_consumer"] = backlog / max(values["consumers"], 1.0)
    return {name: [value] for name, value in values.items()}


class RabbitMQSensorSource(PolledSensorSource):
    """Queue readings for the domain from RabbitMQ."""

    CONFIG_DOC = _DOC

    def __init__(self, conf: Mapping[str, Any], credentials: SensorCredentials | None = None):
        super().__init__(conf, credentials)
        self.queue = str(conf["rabbitmq_queue"])
        self.vhost = str(conf.get("rabbitmq_vhost", "/"))
        self.url = str(conf.get("rabbitmq_management_url", DEFAULT_MANAGEMENT_URL)).rstrip("/")

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Check the queue, the vhost and the management URL."""
        validate_polling_keys(conf)
        if string_key(conf, "rabbitmq_queue") is None:
            raise BadRequestError("sensor_type rabbitmq needs rabbitmq_queue")
        string_key(conf, "rabbitmq_vhost", "/")
        url = string_key(conf, "rabbitmq_management_url", DEFAULT_MANAGEMENT_URL)
        if not url.startswith(("http://", "https://")):
            raise BadRequestError(f"rabbitmq_management_url must be an http(s) URL, not {url!r}")

    def management_values(self, timeout: float) -> dict[str, float]:
        """The queue's figures from the management API.

        ``SensorQueryError`` when the API is unreachable, answers an error, or
        has no statistics of the queue yet (then its depth is unknown, not 0).
        """
        path = f"/api/queues/{quote(self.vhost, safe='')}/{quote(self.queue, safe='')}"
        creds = (self.credentials.rabbitmq_username, self.credentials.rabbitmq_password)
        try:
            resp = requests.get(self.url + path, auth=creds, timeout=timeout)
        except requests.RequestException as exc:
            raise SensorQueryError(f"rabbitmq management {self.url}: {exc}") from exc
        if resp.status_code != 200:
            raise SensorQueryError(
                f"rabbitmq management {self.url}: HTTP {resp.status_code} for queue {self.queue!r}"
            )
        try:
            body = resp.json()
        except ValueError as exc:
            raise SensorQueryError(f"rabbitmq management {self.url}: not JSON: {exc}") from exc
        if not isinstance(body, dict) or "messages_ready" not in body:
            # the API lists a queue before it has statistics of it (its first
            # seconds, or for good when it predates the management plugin):
            # its depth is unknown there, not zero
            raise SensorQueryError(
                f"rabbitmq management {self.url}: no statistics of queue {self.queue!r} yet"
            )
        stats = body.get("message_stats") or {}
        return {
            "ready": float(body.get("messages_ready") or 0),
            "unacked": float(body.get("messages_unacknowledged") or 0),
            "consumers": float(body.get("consumers") or 0),
            "publish_rate": float((stats.get("publish_details") or {}).get("rate", 0.0)),
            "deliver_rate": float((stats.get("deliver_get_details") or {}).get("rate", 0.0)),
        }

    def collect(self, target: PollTarget, timeout: float) -> Readings:
        """Management API first; the AMQP probe (ready, consumers) if it fails."""
        try:
            values = self.management_values(timeout)
        except SensorQueryError as exc:
            probe = self.credentials.amqp_queue_probe
            if probe is None:
                raise
            log.warning("%s; reading queue %r over AMQP instead", exc, self.queue)
            try:
                ready, consumers = probe(self.vhost, self.queue)
            except Exception as probe_exc:
                raise SensorQueryError(
                    f"rabbitmq queue {self.queue!r}: management API and AMQP both failed:"
                    f" {exc}; {probe_exc}"
                ) from probe_exc
            values = {"ready": float(ready), "consumers": float(consumers)}
        return Readings(domain=_with_backlog(values))
