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
but before the ack, the broker gives the request to a worker again.

Order and throughput.  Messages are handled one at a time on the consumer's
thread, in delivery order, so each instance's and each domain's messages
are applied in the order they arrived.  With ``prefetch`` N the broker keeps
up to N messages in flight to the worker, so the next one is already there
when a handler returns, and handled messages are acknowledged together
(``epum.messaging.acks``): one ``basic.ack`` for every N/2, or as soon as
no next message arrives within ``ACK_IDLE`` seconds.  Only fires wait in a
batch; a call is acknowledged (with the fires before it) once answered, so
a lost channel makes the broker deliver again at most a few fires (which
are idempotent: reports carry update counters, heartbeats are last-wins),
never a call already answered.

Failures (see ``retry.py`` for the queues):

- A fire (a report: ``instance_info``, a heartbeat) whose handler finds the
  store unavailable is copied to the retry queue of its delay and acked;
  RabbitMQ hands it back after the delay, and after ``RetryPolicy.retries``
  retries it goes to ``<service>.dead``.  Nothing waits on the consumer
  thread.  The copy is published on the consumer's channel before the ack on
  the same channel, and the broker acts on a channel's commands in order: a
  connection lost between the two leaves the original unacked, so it is
  delivered again (a report may be seen twice, never lost to a connection
  failure).  Not covered, as there are no publisher confirms: a broker that
  dies before it has written the copy (persistent, durable queue) to disk.
- A call that finds the store unavailable gets the ``StoreUnavailableError``
  reply at once, as before: its caller is waiting and can decide to try
  again, while a retried call would answer a caller that has timed out.
- Anything else is for good: a bad request, a body that cannot be decoded,
  a handler error.  The message is settled once (a call gets the error
  reply) and never requeued; a fire that failed so is logged and, with
  ``dead_letter`` on, copied to ``<service>.dead`` with the reason.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kombu import Connection, Producer
from kombu.mixins import ConsumerMixin

from epum.errors import WIRE_NAMES, BadRequestError, StoreUnavailableError
from epum.logcontext import new_request_id, request_context
from epum.messaging import envelope
from epum.messaging.acks import AckBatch
from epum.messaging.callers import CallerPolicy
from epum.messaging.connection import exchange, mask_url, service_queue
from epum.messaging.dispatch import Dispatcher
from epum.messaging.edge import GuardedConsumer, decode_body
from epum.messaging.metrics import OpMetrics
from epum.messaging.names import Names
from epum.messaging.replies import Outcome, ReplyRoute, reply_route
from epum.messaging.retry import (
    REASON_HEADER,
    RETRIES_HEADER,
    RetryPolicy,
    copy_headers,
    dead_letter_queue,
    queue_depth,
    retries_so_far,
    retry_queue,
    short_reason,
)
from epum.settings.limits import LimitSettings
from epum.validation import short

log = logging.getLogger(__name__)

#: How long a batch of handled messages waits for a next message before it
#: is acknowledged anyway (seconds): short next to any client's patience.
ACK_IDLE = 0.002


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
        retry: RetryPolicy | None = None,
        callers: CallerPolicy | None = None,
        limits: LimitSettings | None = None,
    ):
        self.connection = connection
        self.limits = limits or LimitSettings()
        self.names = names
        self.service = service
        self.dispatcher = dispatcher
        self.prefetch = prefetch
        self.metrics = metrics or OpMetrics()
        self.poll_interval = poll_interval
        self.ready = threading.Event()
        self.sessions = 0
        self._exchange = exchange(names)
        self._queue = service_queue(names, service)
        self.retry = retry or RetryPolicy()
        self.callers = callers or CallerPolicy()
        self._retry_queues = {ms: retry_queue(names, service, ms) for ms in self.retry.delays_ms()}
        self._dead_queue = dead_letter_queue(names, service)
        self._dashi_producer: Producer | None = None
        self._direct_producer: Producer | None = None
        self._acks = AckBatch(max(1, prefetch // 2))

    # ConsumerMixin hooks ----------------------------------------------------
    def get_consumers(self, Consumer, channel):
        """The service queue's consumer; also (re)binds the reply producers to ``channel``."""
        self._acks.forget()  # a new channel: the old one's deliveries come again
        self._dashi_producer = Producer(channel, exchange=self._exchange, auto_declare=False)
        self._direct_producer = Producer(channel, auto_declare=False)
        for queue in (*self._retry_queues.values(), self._dead_queue):
            queue.bind(channel).declare()
        return [
            GuardedConsumer(
                channel,
                on_decode_error=self.on_decode_error,
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

    def consume(self, limit: Any = None, timeout: float | None = None, safety_interval=1, **kw):
        """kombu's consume loop (without its ``limit``), that also acknowledges the batch
        of handled messages once no next message arrives within ``ACK_IDLE``, and
        before it returns."""
        idle = 0.0
        with self.consumer_context(**kw) as (conn, _channel, _consumers):
            while not self.should_stop:
                self.on_iteration()
                wait = ACK_IDLE if self._acks.pending else safety_interval
                try:
                    conn.drain_events(timeout=wait)
                except TimeoutError:
                    if self._acks.pending:
                        self._flush_acks()
                        continue
                    conn.heartbeat_check()
                    idle += safety_interval
                    if timeout and idle >= timeout:
                        raise
                except OSError:
                    if not self.should_stop:
                        raise
                else:
                    idle = 0.0
                    yield
            self._flush_acks()

    def _flush_acks(self) -> None:
        try:
            self._acks.flush()
        except self.connection.channel_errors as exc:
            raise ConnectionError(f"channel failed while acknowledging: {exc}") from exc

    def stop(self) -> None:
        """Stop taking messages; ``run()`` returns after the one in hand."""
        self.should_stop = True

    @property
    def dead_letter_queue(self) -> str:
        """The name of this service's dead-letter queue, as on the broker."""
        return self._dead_queue.name

    def dead_letter_depth(self) -> int:
        """How many messages wait in ``<service>.dead`` (0 before it is declared).

        Safe from any thread (a metrics endpoint, ``epumctl``): it asks the
        broker on a connection of its own, never on the consumer's channel.
        """
        with self.connection.clone() as conn:
            return queue_depth(conn, self._dead_queue.name)

    # one message -----------------------------------------------------------
    def _on_message(self, message) -> None:
        headers = message.headers or {}
        route = reply_route(headers, message.properties or {})
        refused = message.content_type != envelope.CONTENT_TYPE
        outcome = self._handle(message, headers, route)
        if route is None and outcome.failure is not None:
            if outcome.store_unavailable:
                self._guarded(self._retry_later, message, headers, outcome.failure)
            elif self.retry.dead_letter:
                self._guarded(self._dead_letter, message, headers, outcome.failure)
        self._settle(message, route, outcome.payload, refused)

    def on_decode_error(self, message, exc: Exception) -> None:
        """A message kombu could not unpack (a bad ``compression`` header): answered with
        a ``BadRequestError`` when a reply was asked for, and rejected, never requeued."""
        route = reply_route(message.headers or {}, message.properties or {})
        log.warning("refused a message that could not be decoded: %s", short(exc, 200))
        error = BadRequestError(f"refused: the message could not be decoded: {short(exc, 200)}")
        if route is None and self.retry.dead_letter:
            self._guarded(self._dead_letter, message, message.headers or {}, str(error))
        self._settle(message, route, envelope.reply_error(error), refused=True)

    def _retry_later(self, message, headers: dict[str, Any], reason: str) -> None:
        """Copy a report the store could not take to the retry queue of its delay, or,
        past the last retry, to the dead-letter queue; the caller acks the original."""
        done = retries_so_far(headers)
        if done >= self.retry.retries:
            log.error("store unavailable after %d retries (%s); dead-lettered", done, reason)
            self._dead_letter(message, headers, f"store unavailable after {done} retries: {reason}")
            return
        queue = self._retry_queues[self.retry.delay_ms(done)]
        log.warning(
            "store unavailable (%s); retry %d of %d in %d ms",
            reason,
            done + 1,
            self.retry.retries,
            self.retry.delay_ms(done),
        )
        self._copy(message, queue.name, copy_headers(headers, **{RETRIES_HEADER: done + 1}))
        self.metrics.count("retried")

    def _dead_letter(self, message, headers: dict[str, Any], reason: str) -> None:
        """Copy ``message`` to ``<service>.dead`` with the reason in a header."""
        self._copy(
            message,
            self._dead_queue.name,
            copy_headers(headers, **{REASON_HEADER: short_reason(reason)}),
        )
        self.metrics.count("dead_lettered")

    def _copy(self, message, queue_name: str, headers: dict[str, Any]) -> None:
        """Publish ``message``'s body unchanged, persistent, straight to ``queue_name``."""
        assert self._direct_producer is not None
        self._direct_producer.publish(
            message.body,
            routing_key=queue_name,
            content_type=message.content_type or "application/octet-stream",
            content_encoding=message.content_encoding or "binary",
            headers=headers,
            delivery_mode=2,
        )

    def _guarded(self, publish, message, headers: dict[str, Any], reason: str) -> None:
        """Run ``publish``; a failed channel makes the mixin reconnect (the unacked original
        comes back), and a copy the broker cannot take at all is logged, not raised."""
        try:
            publish(message, headers, reason)
        except (*self.connection.connection_errors, *self.connection.channel_errors) as exc:
            raise ConnectionError(f"channel failed while copying a message: {exc}") from exc
        except Exception as exc:  # e.g. headers the wire cannot encode: requeueing would loop
            log.error(
                "could not copy a failed message (%s): %s: %s", reason, type(exc).__name__, exc
            )

    def _settle(self, message, route: ReplyRoute | None, payload: str, refused: bool) -> None:
        """Reply (if asked), then ack, or reject without requeue if ``refused``."""
        try:
            if route is not None:
                self._send_reply(route, payload)
            if refused:
                message.reject(requeue=False)
            else:
                self._acks.done(message)
                if route is not None:  # a call: answered once, so acknowledged at once
                    self._acks.flush()
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

    def _handle(self, message, headers: dict[str, Any], route: ReplyRoute | None) -> Outcome:
        """The encoded reply to ``message`` (success or error) and any failure; never raises."""
        request_id = (route.correlation_id if route else None) or new_request_id()
        sender = headers.get("sender")
        sender = self.names.unqualify(sender) if isinstance(sender, str) else None
        try:
            if sender is not None and len(sender) > self.limits.max_name_length:
                raise BadRequestError(
                    f"refused a sender header of {len(sender)} characters, over "
                    f"limits.max_name_length ({self.limits.max_name_length})"
                )
            op, args = envelope.parse_request(self._decode(message))
        except BadRequestError as exc:
            log.warning("refused a request from %s: %.500s", short(sender or "?", 80), exc)
            return Outcome(envelope.reply_error(exc), f"BadRequestError: {exc}")
        known = op in self.dispatcher
        with request_context(op if known else short(op, 40), sender, request_id):
            metric_name = op if known else "unknown"
            try:
                args = self.callers.admit(op, args, (message.properties or {}).get("user_id"))
                with self.metrics.measure(metric_name):
                    result = self.dispatcher.dispatch(op, args)
            except StoreUnavailableError as exc:
                if route is not None:
                    log.warning("%s failed: the store is unavailable: %s", op, exc)
                return Outcome(envelope.reply_error(exc), f"{op}: {exc}", store_unavailable=True)
            except Exception as exc:
                if isinstance(exc, tuple(WIRE_NAMES)):
                    log.info("%s failed: %s: %.500s", op, type(exc).__name__, exc)
                else:
                    log.exception("%s failed with an unexpected error", op)
                return Outcome(envelope.reply_error(exc), f"{op}: {type(exc).__name__}: {exc}")
            try:
                return Outcome(envelope.reply_ok(result))
            except (TypeError, ValueError) as exc:
                log.error("%s returned a result that is not JSON: %.500s", op, exc)
                error = TypeError(f"the result of {op} does not serialize to JSON: {exc}")
                return Outcome(envelope.reply_error(error), f"{op}: {error}")

    def _decode(self, message) -> Any:
        """The checked JSON body of ``message`` (see ``epum.messaging.edge``)."""
        return decode_body(message, self.limits)

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
