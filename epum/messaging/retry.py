"""Delayed, bounded retry of reports, and the dead-letter queue, kept by RabbitMQ itself.

A fire (a report: ``instance_info``, a heartbeat) whose handler found the
store unavailable is not waited on by the consumer: its copy goes to a
retry queue of the service and the original is acked.  Each retry queue
holds its messages for one delay (``x-message-ttl``) and then dead-letters
them through the default exchange straight back into the service queue
(``x-dead-letter-exchange: ""``, ``x-dead-letter-routing-key``: the service
queue's name), so they come back to whichever worker is free.  One queue per
delay, since RabbitMQ expires messages only at a queue's head: a queue that
mixed delays would hold a short one behind a long one.

Delays double from ``delay`` up to ``delay_max``; the header
``x-epum-retries`` counts the retries so far.  A report that failed
``retries`` times more goes to ``<service>.dead`` (durable, no expiry) with
the header ``x-epum-dead-reason``; so does, when ``dead_letter`` is on, a
fire that failed for good (bad input, a body that cannot be decoded, a
handler error that a retry would only repeat).

Names (all sysname-prefixed like every name): ``<service>.retry.<ms>`` and
``<service>.dead``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Queue

from epum.messaging.names import Names
from epum.messaging.service_queues import shard_exchange, shard_names
from epum.settings import AmqpSettings

log = logging.getLogger(__name__)

#: The header that counts the retries a message has had.
RETRIES_HEADER = "x-epum-retries"
#: The header of a dead-lettered message that says why it is there.
REASON_HEADER = "x-epum-dead-reason"
#: Headers of a message's earlier life that are not carried to its copy
#: (RabbitMQ's own dead-letter history grows with every pass; ours counts).
DROPPED_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue")
#: The longest reason kept in a header: enough to read, far under a frame.
MAX_REASON = 1000


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how late a report the store could not take is tried again.

    ``retries`` retries after the first try, the n-th (from 0) after
    ``min(delay * 2**n, delay_max)`` seconds; ``dead_letter`` also keeps a
    copy of every fire that failed for good.  Raises ValueError naming a
    field that is out of range.
    """

    retries: int = AmqpSettings.store_retries
    delay: float = AmqpSettings.store_retry_delay
    delay_max: float = AmqpSettings.store_retry_delay_max
    dead_letter: bool = AmqpSettings.dead_letter

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise ValueError(f"retries must be an int, not {self.retries!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, not {self.retries}")
        for name in ("delay", "delay_max"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.delay_max < self.delay:
            raise ValueError(f"delay_max ({self.delay_max}) must be >= delay ({self.delay})")

    @classmethod
    def from_settings(cls, amqp: AmqpSettings) -> RetryPolicy:
        """The policy of ``server.amqp``."""
        return cls(
            retries=amqp.store_retries,
            delay=amqp.store_retry_delay,
            delay_max=amqp.store_retry_delay_max,
            dead_letter=amqp.dead_letter,
        )

    def delay_ms(self, attempt: int) -> int:
        """Milliseconds before retry number ``attempt`` (0 = the first retry)."""
        seconds = min(self.delay * 2 ** min(attempt, 64), self.delay_max)
        return max(1, round(seconds * 1000))

    def delays_ms(self) -> list[int]:
        """The distinct delays this policy uses, shortest first (one retry queue each)."""
        return sorted({self.delay_ms(n) for n in range(self.retries)})


def retries_so_far(headers: dict[str, Any]) -> int:
    """The retry count a message carries (0 for a first delivery or a header gone bad)."""
    value = headers.get(RETRIES_HEADER)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


def copy_headers(headers: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``headers`` for a message's copy: its earlier dead-letter history left out."""
    out = {k: v for k, v in headers.items() if k not in DROPPED_HEADERS}
    out.update(changes)
    return out


def short_reason(reason: str) -> str:
    """``reason`` cut to ``MAX_REASON`` characters."""
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def retry_queue(names: Names, service: str, delay_ms: int) -> Queue:
    """The durable queue that holds ``service``'s reports for ``delay_ms``, then hands
    them back to the service queue through the default exchange."""
    return Queue(
        names.qualify(f"{service}.retry.{delay_ms}"),
        durable=True,
        auto_delete=False,
        queue_arguments={
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.qualify(service),
        },
    )


def dead_letter_queue(names: Names, service: str) -> Queue:
    """``<service>.dead``: durable, no expiry; its messages wait for an operator."""
    return Queue(names.qualify(f"{service}.dead"), durable=True, auto_delete=False)


def queue_depth(connection: Connection, name: str) -> int:
    """How many messages wait in the queue ``name`` (0 when it does not exist).

    Uses its own channel of ``connection`` (a passive declare), so it may be
    called from any thread with a connection that thread owns.
    """
    with connection.channel() as channel:
        try:
            return channel.queue_declare(name, passive=True).message_count
        except connection.channel_errors:
            return 0


def delete_namespace(
    connection: Connection,
    names: Names,
    services: Iterable[str],
    policy: RetryPolicy,
    shards: int = 1,
) -> None:
    """Delete the queues of ``services`` under ``names`` (each service queue, its
    dead-letter queue, its retry queues under ``policy`` and, with ``shards`` > 1,
    its queue shards and their exchange) and the system's exchange; missing ones
    are fine.  For a namespace of one's own only: its messages go with it."""
    channel = connection.channel()
    try:
        for service in services:
            queues = [names.qualify(service), dead_letter_queue(names, service).name]
            queues += [retry_queue(names, service, ms).name for ms in policy.delays_ms()]
            queues += [names.qualify(name) for name in shard_names(service, shards)]
            if shards > 1:
                channel.exchange_delete(shard_exchange(names, service).name)
            for name in queues:
                channel.queue_delete(name)
        channel.exchange_delete(names.exchange)
    finally:
        channel.close()


class FailedFires:
    """Where a service's failed fires are copied: its retry queues and dead-letter queue.

    ``copy`` publishes on the producer it is given (the consumer's channel,
    before the original is acknowledged on it); ``queues`` are the queues to
    declare on a new channel.
    """

    def __init__(self, names: Names, service: str, policy: RetryPolicy, metrics: Any):
        self.policy = policy
        self.metrics = metrics
        self.retry_queues = {ms: retry_queue(names, service, ms) for ms in policy.delays_ms()}
        self.dead_queue = dead_letter_queue(names, service)

    @property
    def queues(self) -> list[Queue]:
        """Every queue a copy may go to."""
        return [*self.retry_queues.values(), self.dead_queue]

    def copy(self, producer: Any, message: Any, outcome: Any) -> None:
        """Copy the fire ``message``, whose handling came to ``outcome`` (a failure), to
        the retry queue of its delay when the store was unavailable (past the last retry,
        or when it failed for good and ``dead_letter`` is on, to the dead-letter queue)."""
        headers = message.headers or {}
        reason = outcome.failure
        if not outcome.store_unavailable:
            if self.policy.dead_letter:
                self._dead_letter(producer, message, headers, reason)
            return
        done = retries_so_far(headers)
        if done >= self.policy.retries:
            log.error("store unavailable after %d retries (%s); dead-lettered", done, reason)
            why = f"store unavailable after {done} retries: {reason}"
            self._dead_letter(producer, message, headers, why)
            return
        delay = self.policy.delay_ms(done)
        log.warning(
            "store unavailable (%s); retry %d of %d in %d ms",
            reason,
            done + 1,
            self.policy.retries,
            delay,
        )
        headers = copy_headers(headers, **{RETRIES_HEADER: done + 1})
        _copy(producer, message, self.retry_queues[delay].name, headers)
        self.metrics.count("retried")

    def _dead_letter(self, producer: Any, message: Any, headers: dict, reason: str) -> None:
        headers = copy_headers(headers, **{REASON_HEADER: short_reason(reason)})
        _copy(producer, message, self.dead_queue.name, headers)
        self.metrics.count("dead_lettered")


def _copy(producer: Any, message: Any, queue_name: str, headers: dict[str, Any]) -> None:
    """Publish ``message``'s body unchanged, persistent, straight to ``queue_name``."""
    producer.publish(
        message.body,
        exchange="",
        routing_key=queue_name,
        content_type=message.content_type or "application/octet-stream",
        content_encoding=message.content_encoding or "binary",
        headers=headers,
        delivery_mode=2,
    )
