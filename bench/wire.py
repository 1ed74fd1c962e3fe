"""The benchmark's own end of the broker: bulk publishing and bare calls, with plain kombu.

``Wire(url, names)`` holds one connection and channel: ``publish`` sends a
request to a queue through the system's exchange as epum's clients do
(JSON, transient, a ``sender`` header); ``send_call`` publishes one asking
for a reply on RabbitMQ's direct reply-to and ``wait_reply`` waits for it;
``call`` is both, the bare round trip.  The reply consumer is started once,
when the wire is opened, and kept (the least a round trip costs).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from epum.messaging.names import Names

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


class Wire:
    """One connection for publishing requests and waiting for replies (one thread)."""

    def __init__(self, url: str, names: Names):
        self.names = names
        self.conn = Connection(url)
        self.channel = self.conn.channel()
        self.exchange = Exchange(names.exchange, type="direct", durable=False, auto_delete=False)
        self.producer = Producer(self.channel, exchange=self.exchange)
        self._replies: dict[str, Any] = {}
        self.consumer = Consumer(
            self.channel,
            queues=[Queue(DIRECT_REPLY_TO, no_ack=True)],
            on_message=self._on_reply,
            no_ack=True,
            accept=["json"],
            auto_declare=False,
        )
        self.consumer.consume()

    def _on_reply(self, message: Any) -> None:
        self._replies[message.properties.get("correlation_id")] = message.body

    def publish(self, queue: str, body: str, sender: str, **properties: Any) -> None:
        """Send ``body`` (JSON text) to ``queue`` through the exchange, from ``sender``."""
        self.producer.publish(
            body,
            routing_key=queue,
            headers={"sender": self.names.qualify(sender)},
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=1,
            **properties,
        )

    def send_call(self, queue: str, body: str, sender: str = "bench") -> str:
        """Publish a request that asks for a reply; returns its correlation id."""
        correlation_id = uuid.uuid4().hex
        self.publish(queue, body, sender, reply_to=DIRECT_REPLY_TO, correlation_id=correlation_id)
        return correlation_id

    def wait_reply(self, correlation_id: str, timeout: float) -> Any:
        """The reply body (as sent) to the call ``correlation_id``; TimeoutError without one."""
        deadline = time.monotonic() + timeout
        while correlation_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {correlation_id} within {timeout:g} s")
            try:
                self.conn.drain_events(timeout=remaining)
            except TimeoutError:
                continue
        return self._replies.pop(correlation_id)

    def call(self, queue: str, body: str, timeout: float = 10.0) -> Any:
        """One round trip to ``queue``; the reply body."""
        return self.wait_reply(self.send_call(queue, body), timeout)

    def close(self) -> None:
        """Stop listening and close the connection."""
        self.consumer.cancel()
        self.conn.release()
