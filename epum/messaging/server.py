"""The RPC server: consumes a service queue and answers through a Dispatcher.

Built on kombu's ``ConsumerMixin``: the loop, reconnects with backoff and
heartbeats belong to kombu; ``get_consumers`` declares the exchange, the
durable service queue and its binding, so every reconnect redeclares them.

Per message, in order: refuse anything not JSON without deserializing it;
parse ``{op, args}``; check op and args against the dispatch table; run the
handler; check the result serializes; publish the reply (if one was asked
for); then ack.  Any error becomes an error reply; nothing a handler does
stops the consumer.  Two reply styles:

- dashi: header ``reply-to`` = a routing key on the same exchange;
- AMQP: the ``reply_to`` property (e.g. ``amq.rabbitmq.reply-to``) with a
  ``correlation_id``, answered through the default exchange.

Delivery is at least once: if the connection breaks after the handler ran
but before the ack, the broker gives the request to a worker again.  A fire
(a report: ``instance_info``, a heartbeat) whose handler finds the store
unavailable is put back on the queue after ``STORE_RETRY_DELAY`` instead of
being acked, so no report is lost to a store outage; a call gets the error.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Producer
from kombu.mixins import ConsumerMixin

from epum.errors import WIRE_NAMES, BadRequestError, StoreUnavailableError
from epum.logcontext import request_context
from epum.messaging import envelope
from epum.messaging.connection import exchange, mask_url, service_queue
from epum.messaging.dispatch import Dispatcher
from epum.messaging.metrics import OpMetrics
from epum.messaging.names import Names

log = logging.getLogger(__name__)


class _RetryLater(Exception):
    """A fire whose handler could not reach the store: hand it back for another try."""


#: Seconds a worker waits before handing back a fire the store could not take:
#: long enough not to spin through an outage, short enough to catch up soon.
STORE_RETRY_DELAY = 1.0


@dataclass(frozen=True)
class ReplyRoute:
    """Where the reply to one request goes."""

    routing_key: str
    correlation_id: str | None
    standard: bool  # True: default exchange + correlation_id; False: dashi exchange


def reply_route(headers: dict[str, Any], properties: dict[str, Any]) -> ReplyRoute | None:
    """The reply route a request asks for, or None for a fire."""
    reply_to = properties.get("reply_to")
    if reply_to:
        return ReplyRoute(str(reply_to), properties.get("correlation_id"), standard=True)
    dashi_reply = headers.get("reply-to")
    if dashi_reply:
        return ReplyRoute(str(dashi_reply), None, standard=False)
    return None


class RpcServer(ConsumerMixin):
    """Serves one service's queue with a ``Dispatcher`` until ``stop()``.

    ``run()`` blocks: it consumes, survives broker connection loss (reconnects
    with backoff and redeclares everything) and returns once ``stop()`` was
    called and the message in hand is finished (within ``poll_interval``).
    ``ready`` is set while consuming; ``sessions`` counts the times consuming
    started (1 + reconnects).
    """

    def __init__(
        self,
        connection: Connection,
        names: Names,
        service: str,
        dispatcher: Dispatcher,
        *,
        prefetch: int = 1,
        metrics: OpMetrics | None = None,
        poll_interval: float = 0.5,
    ):
        self.connection = connection
        self.names = names
        self.service = service
        self.dispatcher = dispatcher
        self.prefetch = prefetch
        self.metrics = metrics or OpMetrics()
        self.poll_interval = poll_interval
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self.sessions = 0
        self._exchange = exchange(names)
        self._queue = service_queue(names, service)
        self._dashi_producer: Producer | None = None
        self._direct_producer: Producer | None = None

    # ConsumerMixin hooks ----------------------------------------------------
    def get_consumers(self, Consumer, channel):
        """The service queue's consumer; also (re)binds the reply producers to ``channel``."""
        self._dashi_producer = Producer(channel, exchange=self._exchange, auto_declare=False)
        self._direct_producer = Producer(channel, auto_declare=False)
        return [
            Consumer(
                queues=[self._queue],
                on_message=self._on_message,
                accept=["json"],
                prefetch_count=self.prefetch,
            )
        ]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        log.info(
            "serving %s on %s (exchange %s, prefetch %d)",
            self._queue.name,
            mask_url(connection.as_uri(include_password=True)),
            self._exchange.name,
            self.prefetch,
        )
        self.sessions += 1
        self.ready.set()

    def on_consume_end(self, connection, channel):
        self.ready.clear()

    def on_connection_error(self, exc, interval):
        self.ready.clear()
        log.warning("broker unreachable (%s); retrying in %.1f s", exc, interval)

    def on_connection_revived(self):
        self.ready.clear()
        log.info("connected to broker %s", mask_url(self.connection.as_uri(include_password=True)))

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        """Consume until ``stop()``; ``stop()`` takes effect within ``poll_interval``."""
        kwargs.setdefault("safety_interval", self.poll_interval)
        super().run(_tokens, **kwargs)

    def stop(self) -> None:
        """Stop taking messages; ``run()`` returns after the one in hand."""
        self.should_stop = True
        self._stopping.set()

    # one message -----------------------------------------------------------
    def _on_message(self, message) -> None:
        headers = message.headers or {}
        route = reply_route(headers, message.properties or {})
        refused = message.content_type != envelope.CONTENT_TYPE
        try:
            payload = self._handle(message, headers, route)
        except _RetryLater as exc:
            # Nothing acknowledged is lost: a report (a fire) that found the
            # store down goes back to the queue for whichever worker is next.
            log.warning("store unavailable (%s); the message goes back to the queue", exc)
            self._stopping.wait(STORE_RETRY_DELAY)
            message.requeue()
            return
        self._settle(message, route, payload, refused)

    def on_decode_error(self, message, exc: Exception) -> None:
        """A message kombu could not unpack (a bad ``compression`` header): answered with
        a ``BadRequestError`` when a reply was asked for, and rejected, never requeued."""
        route = reply_route(message.headers or {}, message.properties or {})
        log.warning("refused a message that could not be decoded: %r", exc)
        error = BadRequestError(f"refused: the message could not be decoded: {exc!r}")
        self._settle(message, route, envelope.reply_error(error), refused=True)

    def _settle(self, message, route: ReplyRoute | None, payload: str, refused: bool) -> None:
        """Reply (if asked), then ack, or reject without requeue if ``refused``."""
        try:
            if route is not None:
                self._send_reply(route, payload)
            if refused:
                message.reject(requeue=False)
            else:
                message.ack()
        except self.connection.channel_errors as exc:
            # the channel is gone with the consumer on it: make the mixin reconnect
            raise ConnectionError(f"channel failed while replying: {exc}") from exc

    def _send_reply(self, route: ReplyRoute, payload: str) -> None:
        """Publish the reply; a route that cannot be published to is logged, not raised
        (raising would stop the consumer and leave the request to be redelivered forever)."""
        try:
            self._reply(route, payload)
        except (*self.connection.connection_errors, *self.connection.channel_errors):
            raise
        except Exception as exc:  # e.g. a reply-to longer than a routing key may be
            log.error(
                "could not reply to %.100r: %s: %s", route.routing_key, type(exc).__name__, exc
            )

    def _handle(self, message, headers: dict[str, Any], route: ReplyRoute | None) -> str:
        """The encoded reply to ``message`` (success or error); never raises."""
        request_id = (route.correlation_id if route else None) or uuid.uuid4().hex
        sender = headers.get("sender")
        sender = self.names.unqualify(sender) if isinstance(sender, str) else None
        try:
            op, args = envelope.parse_request(self._decode(message))
        except BadRequestError as exc:
            log.warning("refused a request from %s: %s", sender or "?", exc)
            return envelope.reply_error(exc)
        with request_context(op, sender, request_id):
            metric_name = op if op in self.dispatcher else "unknown"
            try:
                with self.metrics.measure(metric_name):
                    result = self.dispatcher.dispatch(op, args)
            except StoreUnavailableError as exc:
                if route is None:
                    raise _RetryLater(str(exc)) from exc
                log.warning("%s failed: the store is unavailable: %s", op, exc)
                return envelope.reply_error(exc)
            except Exception as exc:
                if isinstance(exc, tuple(WIRE_NAMES)):
                    log.info("%s failed: %s: %s", op, type(exc).__name__, exc)
                else:
                    log.exception("%s failed with an unexpected error", op)
                return envelope.reply_error(exc)
            try:
                return envelope.reply_ok(result)
            except (TypeError, ValueError) as exc:
                log.error("%s returned a result that is not JSON: %s", op, exc)
                return envelope.reply_error(
                    TypeError(f"the result of {op} does not serialize to JSON: {exc}")
                )

    def _decode(self, message) -> Any:
        """The JSON body of ``message``; anything else is refused, never deserialized."""
        if message.content_type != envelope.CONTENT_TYPE:
            raise BadRequestError(
                f"refused a message of content type {message.content_type!r}: "
                f"only {envelope.CONTENT_TYPE} is accepted"
            )
        try:  # plain json: kombu's decoder would turn {"__type__", "__value__"} into objects
            return json.loads(message.body)
        except (ValueError, TypeError, RecursionError) as exc:
            raise BadRequestError(f"request body is not valid JSON: {exc}") from None

    def _reply(self, route: ReplyRoute, payload: str) -> None:
        options: dict[str, Any] = {
            "routing_key": route.routing_key,
            "content_type": envelope.CONTENT_TYPE,
            "content_encoding": envelope.CONTENT_ENCODING,
            "delivery_mode": 1,
        }
        if route.standard:
            assert self._direct_producer is not None
            self._direct_producer.publish(payload, correlation_id=route.correlation_id, **options)
        else:
            assert self._dashi_producer is not None
            self._dashi_producer.publish(payload, **options)
