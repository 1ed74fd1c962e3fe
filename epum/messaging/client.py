"""The RPC client: ``call`` (wait for the reply) and ``fire`` (no reply).

Requests go out through a kombu ``ProducerPool`` of this client's own
connections, so the client is safe to share between threads.  A call
listens on RabbitMQ's direct reply-to (``amq.rabbitmq.reply-to``, no reply
queue to declare) with a consumer kept on each pooled producer's channel,
publishes with ``mandatory`` so that a service without a queue fails fast
(``NoSuchServiceError``) instead of timing out, and sets the request's TTL
to the call's timeout so a request nobody answered in time is never run
late.  With ``dashi_replies`` a call also carries dashi's ``reply-to``
header (a routing key on the system's exchange, bound to a reply queue of
this client for the duration of the call), because services built on the
original messaging library (dashi) answer only to that header; whichever
reply arrives first is taken, a second one is dropped.  Sending is retried
across a broken connection (kombu ``ensure``); a connection lost while
waiting for the reply is reported, never retried, because the request may
have run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

from kombu import Connection, Consumer, Producer, Queue
from kombu.exceptions import LimitExceeded, OperationalError
from kombu.pools import ProducerPool

from epum.errors import RemoteError
from epum.messaging import envelope
from epum.messaging.connection import broker_address, exchange
from epum.messaging.exceptions import (
    BrokerUnavailableError,
    NoSuchServiceError,
    RpcTimeoutError,
)
from epum.messaging.names import Names

log = logging.getLogger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


class RpcClient:
    """Sends requests to services of one system (``names``) as ``sender``.

    ``call`` returns the remote result or raises: the service's error (known
    types rebuilt, others as ``RemoteError``), ``NoSuchServiceError``,
    ``RpcTimeoutError`` or ``BrokerUnavailableError``.  ``fire`` returns once
    the broker has the request.
    """

    def __init__(
        self,
        connection: Connection,
        names: Names,
        sender: str,
        *,
        timeout: float = 30.0,
        pool_limit: int = 8,
        connect_retries: int = 3,
        dashi_replies: bool = False,
    ):
        self.names = names
        self.dashi_replies = dashi_replies
        self.sender = sender
        self.timeout = timeout
        self._connection = connection
        self._connections = connection.Pool(limit=pool_limit)
        self._producers = ProducerPool(self._connections, limit=pool_limit)
        self._exchange = exchange(names)
        self._reply_queue = Queue(DIRECT_REPLY_TO, no_ack=True)
        self._listeners: weakref.WeakKeyDictionary[Any, _ReplyListener] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._retry = {
            "max_retries": connect_retries,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 2.0,
        }
        self._errors = (
            OperationalError,
            *connection.connection_errors,
            *connection.channel_errors,
        )

    def call(self, service: str, op: str, /, timeout: float | None = None, **args: Any) -> Any:
        """Run ``op`` on ``service`` with keyword ``args`` and return its result."""
        timeout = self.timeout if timeout is None else float(timeout)
        body = envelope.request(op, args)
        deadline = time.monotonic() + timeout
        with self._producer(timeout) as producer:
            conn = producer.__connection__
            try:
                self._ensure_connected(conn)
                state = _PendingCall(uuid.uuid4().hex)
                send = conn.ensure(producer, self._send_call, **self._retry)
                listener = send(producer, state, service, op, body, timeout)
            except self._errors as exc:
                raise self._unavailable(service, op, exc) from exc
            try:
                self._wait(conn, state, service, op, deadline)
            except (RpcTimeoutError, NoSuchServiceError):
                raise
            except self._errors as exc:
                raise BrokerUnavailableError(
                    f"connection lost waiting for {service}.{op}; it may or may not have run: {exc}"
                ) from exc
            finally:
                self._finish(listener)
        try:
            body = state.reply.decode()
        except Exception as exc:  # kombu refuses anything but JSON
            raise RemoteError("MalformedReply", f"reply from {service}.{op}: {exc}") from None
        return envelope.unwrap_reply(body)

    def fire(self, service: str, op: str, /, **args: Any) -> None:
        """Send ``op`` with ``args`` to ``service`` without waiting for any reply."""
        body = envelope.request(op, args)
        with self._producer(self.timeout) as producer:
            try:
                self._ensure_connected(producer.__connection__)
                producer.publish(
                    body,
                    **self._publish_options(service),
                    retry=True,
                    retry_policy=self._retry,
                )
            except self._errors as exc:
                raise self._unavailable(service, op, exc) from exc

    def close(self) -> None:
        """Close every pooled connection (the client is unusable afterwards)."""
        self._producers.force_close_all()
        self._connections.force_close_all()

    # internals ---------------------------------------------------------------
    @contextlib.contextmanager
    def _producer(self, timeout: float) -> Iterator[Producer]:
        """A pooled producer (with its own connection) for the ``with`` block."""
        try:
            producer = self._producers.acquire(block=True, timeout=timeout)
        except LimitExceeded:
            raise RpcTimeoutError(
                f"all {self._producers.limit} connections stayed busy for {timeout} s"
            ) from None
        try:
            yield producer
        finally:
            producer.release()

    def _publish_options(self, service: str) -> dict[str, Any]:
        # user_id: the broker checks it is this connection's user, so a
        # service that trusts user_id knows who is calling.  Not with an
        # EXTERNAL (certificate) login, where the broker names the user.
        conn = self._connection
        external = (conn.login_method or "").upper() == "EXTERNAL"
        user = {"user_id": conn.userid} if conn.userid and not external else {}
        return {
            **user,
            "exchange": self._exchange,
            "routing_key": self.names.qualify(service),
            "headers": {"sender": self.names.qualify(self.sender)},
            "content_type": envelope.CONTENT_TYPE,
            "content_encoding": envelope.CONTENT_ENCODING,
            "delivery_mode": 1,
            "declare": [self._exchange],
        }

    def _ensure_connected(self, conn: Connection) -> None:
        conn.ensure_connection(**self._retry)

    def _send_call(
        self, producer: Producer, state: _PendingCall, service: str, op: str, body: str, ttl: float
    ) -> _ReplyListener:
        """Make ``state`` the call in flight on the producer's channel, then publish."""
        listener = self._listener_for(producer.channel)
        listener.pending = state
        options = self._publish_options(service)
        if listener.dashi_queue is not None:
            # dashi answers to the header, on the exchange, with no correlation id
            listener.dashi_queue.bind_to(self._exchange, routing_key=state.correlation_id)
            listener.dashi_key = state.correlation_id
            options["headers"]["reply-to"] = state.correlation_id
        producer.publish(
            body,
            **options,
            reply_to=DIRECT_REPLY_TO,
            correlation_id=state.correlation_id,
            mandatory=True,
            expiration=ttl,
        )
        log.debug("called %s.%s (%s)", service, op, state.correlation_id)
        return listener

    def _listener_for(self, channel: Any) -> _ReplyListener:
        """The channel's reply listener, started on first use (one per pooled channel)."""
        with self._lock:
            listener = self._listeners.get(channel)
        if listener is None:
            dashi_queue = None
            if self.dashi_replies:
                dashi_queue = Queue(
                    f"{self.names.qualify(self.sender)}.replies.{uuid.uuid4().hex}",
                    exclusive=True,
                    auto_delete=True,
                    durable=False,
                    no_ack=True,
                )
            listener = _ReplyListener(channel, self._reply_queue, dashi_queue)
            with self._lock:
                self._listeners[channel] = listener
        return listener

    def _wait(
        self, conn: Connection, state: _PendingCall, service: str, op: str, deadline: float
    ) -> None:
        while state.reply is None:
            if state.returned:
                raise NoSuchServiceError(
                    f"no queue for service {self.names.qualify(service)!r} "
                    f"on exchange {self._exchange.name!r}: is the service running?"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RpcTimeoutError(f"no reply from {service}.{op} in time")
            try:
                conn.drain_events(timeout=remaining)
            except TimeoutError:
                continue

    def _finish(self, listener: _ReplyListener) -> None:
        """This call is no longer in flight: a late reply to it is dropped."""
        listener.pending = None
        key, listener.dashi_key = listener.dashi_key, None
        if key is not None and listener.dashi_queue is not None:
            try:
                listener.dashi_queue.unbind_from(self._exchange, routing_key=key)
            except self._errors:  # the exclusive queue went with the connection
                log.debug("could not unbind reply key %s", key, exc_info=True)

    def _unavailable(self, service: str, op: str, exc: BaseException) -> BrokerUnavailableError:
        url = broker_address(self._connection)
        return BrokerUnavailableError(f"cannot send {service}.{op} through {url}: {exc}")


class _PendingCall:
    """The state of one call in flight: its correlation id, reply, returned flag."""

    def __init__(self, correlation_id: str):
        self.correlation_id = correlation_id
        self.reply: Any = None
        self.returned = False

    def on_reply(self, message: Any) -> None:
        """Take ``message`` if it answers this call: by correlation id (standard), or
        by the routing key named in the ``reply-to`` header (dashi); first one wins."""
        if self.reply is not None:
            return
        standard = message.properties.get("correlation_id")
        dashi = (message.delivery_info or {}).get("routing_key")
        if self.correlation_id in (standard, dashi):
            self.reply = message

    def on_return(self, exc: Any, exchange: Any, routing_key: Any, message: Any) -> None:
        props = getattr(message, "properties", None) or {}
        if props.get("correlation_id") in (None, self.correlation_id):
            self.returned = True


class _ReplyListener:
    """A direct reply-to consumer kept on one channel for its lifetime.

    The channel belongs to one pooled producer, used by one call at a time,
    so at most one call is ``pending``; replies and returns for anything
    else (a call that timed out) are dropped.  With ``dashi_queue`` (an
    exclusive queue, declared here) it consumes that too: the call in flight
    binds it under its correlation id (``dashi_key``) for dashi's reply.
    """

    def __init__(self, channel: Any, queue: Queue, dashi_queue: Queue | None = None):
        self.pending: _PendingCall | None = None
        self.dashi_key: str | None = None
        self.dashi_queue = dashi_queue(channel) if dashi_queue is not None else None
        queues = [queue]
        if self.dashi_queue is not None:
            self.dashi_queue.declare()
            queues.append(self.dashi_queue)
        self.consumer = Consumer(
            channel,
            queues=queues,
            on_message=self._on_reply,
            no_ack=True,
            accept=["json"],
            auto_declare=False,
        )
        channel.events["basic_return"].add(self._on_return)
        self.consumer.consume()

    def _on_reply(self, message: Any) -> None:
        pending = self.pending
        if pending is not None:
            pending.on_reply(message)

    def _on_return(self, *args: Any) -> None:
        pending = self.pending
        if pending is not None:
            pending.on_return(*args)
