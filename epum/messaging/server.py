"""The RPC server: consumes a service queue and answers through a Dispatcher.

Built on kombu's ``ConsumerMixin``: the loop, reconnects with backoff and
heartbeats belong to kombu; ``get_consumers`` declares the exchange, the
durable service queue and its binding (or its shards: ``service_queues``),
so every reconnect redeclares them.

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

Order and throughput.  With ``handlers`` 1 messages are handled one at a
time on the consumer's thread, in delivery order.  With ``handlers`` N > 1
(the worker's default, ``amqp.handlers``) the consumer's thread only reads
each request (``epum.messaging.handling``) and N threads run them
(``epum.keyed``), in the order one consumer would, except that
reports of different instances overlap: a report (its order key names its
instance) runs after the earlier reports of its instance, alongside those
of other instances; every other request (key ``SERIAL``: the calls) runs
alone, after everything delivered before it and before anything delivered
after it, so a caller that fires a report and then calls sees the report
applied.  A quick request (a heartbeat, ``describe_domain``: served from
the cache) with nothing in hand that it must follow runs on the consumer's
thread itself, which costs a third of a hand-over.  A handler thread
publishes its call's reply on a pooled
connection of its own (any channel may publish a reply, the direct
reply-to's too); what touches the consumer's channel (acks, the copies of
failed fires) stays on the consumer's thread.  With ``prefetch`` N the
broker keeps up to N messages in flight to the worker, so the next one is
already there when a handler returns, and handled messages are
acknowledged together (``epum.messaging.acks``): one ``basic.ack`` for
every N/2, or as soon as no next message arrives within ``ACK_IDLE``
seconds; never before a message's effect is durable.  A call is
acknowledged (with the fires before it) once answered, so a lost channel
makes the broker deliver again at most a few fires (which are idempotent:
reports carry update counters, heartbeats are last-wins), and only the
calls still being handled.

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

import functools
import logging
import queue
import threading
import time
from typing import Any

from kombu import Connection, Producer
from kombu.mixins import ConsumerMixin
from kombu.pools import ProducerPool

from epum.errors import BadRequestError
from epum.keyed import KeyedExecutor
from epum.messaging import envelope
from epum.messaging.acks import AckWindow, Delivery
from epum.messaging.callers import CallerPolicy
from epum.messaging.connection import broker_address, exchange, sibling_connection
from epum.messaging.dispatch import Dispatcher
from epum.messaging.edge import GuardedConsumer
from epum.messaging.handling import Request, RequestHandler
from epum.messaging.metrics import OpMetrics
from epum.messaging.names import Names
from epum.messaging.replies import Outcome, ReplyRoute, reply_options, reply_route
from epum.messaging.retry import FailedFires, RetryPolicy, queue_depth
from epum.messaging.service_queues import ServiceQueues
from epum.operation_spec import SERIAL
from epum.settings.limits import LimitSettings
from epum.validation import short

log = logging.getLogger(__name__)

#: How long a batch of handled messages waits for a next message before it
#: is acknowledged anyway (seconds): short next to any client's patience.
ACK_IDLE = 0.002
#: How long ``run()`` waits, once stopped, for the requests still being handled.
STOP_GRACE = 30.0
#: How often a handler thread's reply is published again after its pooled
#: connection failed, before the reply is given up (its caller times out).
REPLY_RETRIES = 2


class RpcServer(ConsumerMixin):
    """Serves one service's queue with a ``Dispatcher`` until ``stop()``.

    ``run()`` blocks: it consumes, survives broker connection loss (reconnects
    with backoff and redeclares everything) and returns once ``stop()`` was
    called and the messages in hand are finished (within ``poll_interval``,
    and ``STOP_GRACE`` for those on handler threads).  ``ready`` is set while
    consuming; ``sessions`` counts the times consuming started (1 +
    reconnects).  ``handlers``: the threads requests run on (1: the
    consumer's own, see the module docstring).
    """

    def __init__(
        self,
        connection: Connection,
        names: Names,
        service: str,
        dispatcher: Dispatcher,
        *,
        prefetch: int = 1,
        handlers: int = 1,
        metrics: OpMetrics | None = None,
        poll_interval: float = 0.5,
        retry: RetryPolicy | None = None,
        callers: CallerPolicy | None = None,
        limits: LimitSettings | None = None,
        shards: int = 1,
    ):
        if handlers < 1:
            raise ValueError(f"a server needs at least 1 handler thread, not {handlers}")
        self.connection = connection
        self.limits = limits or LimitSettings()
        self.names = names
        self.service = service
        self.dispatcher = dispatcher
        self.prefetch = prefetch
        self.handlers = handlers
        self.metrics = metrics or OpMetrics()
        self.poll_interval = poll_interval
        self.ready = threading.Event()
        self.sessions = 0
        self._exchange = exchange(names)
        #: The queues served: the service queue, and its shards (``epum.messaging.service_queues``).
        self.queues = ServiceQueues(names, service, shards)
        self.retry = retry or RetryPolicy()
        self.callers = callers or CallerPolicy()
        self.requests = RequestHandler(names, dispatcher, self.callers, self.metrics, self.limits)
        self._failed = FailedFires(names, service, self.retry, self.metrics)
        self._producer: Producer | None = None
        self._acks = AckWindow(max(1, prefetch // 2))
        # handler threads, their replies' connections, and what they finished
        self._executor: KeyedExecutor | None = None
        self._reply_pool: ProducerPool | None = None
        self._finished: queue.SimpleQueue = queue.SimpleQueue()

    # ConsumerMixin hooks ----------------------------------------------------
    def get_consumers(self, Consumer, channel):
        """The service queue's consumer; also (re)binds the reply producer to ``channel``."""
        self._acks.forget()  # a new channel: the old one's deliveries come again
        self._producer = Producer(channel, auto_declare=False)
        for queue_ in self._failed.queues:
            queue_.bind(channel).declare()
        self.queues.declare(channel, self.connection.channel_errors)
        return [
            GuardedConsumer(
                channel,
                on_decode_error=self.on_decode_error,
                queues=self.queues.all,
                on_message=self._on_message,
                accept=["json"],
                prefetch_count=self.prefetch,
                auto_declare=False,  # declared above, the shards' way when there are shards
            )
        ]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        log.info(
            "serving %s on %s (exchange %s, prefetch %d, %d handler threads)",
            ", ".join(self.queues.names_on_broker),
            broker_address(connection),
            self._exchange.name,
            self.prefetch,
            self.handlers,
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
        log.info("connected to broker %s", broker_address(self.connection))

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        """Consume until ``stop()``; ``stop()`` takes effect within ``poll_interval``."""
        kwargs.setdefault("safety_interval", self.poll_interval)
        if self.handlers > 1:
            self._executor = KeyedExecutor(self.handlers, name=f"{self.service}-handler")
            pool = sibling_connection(self.connection, "replies").Pool(limit=self.handlers)
            self._reply_pool = ProducerPool(pool, limit=self.handlers)
        try:
            super().run(_tokens, **kwargs)
        finally:
            if self._executor is not None:
                self._executor.shutdown()
                self._executor.wait_idle(STOP_GRACE)
            if self._reply_pool is not None:
                self._reply_pool.force_close_all()
                self._reply_pool.connections.force_close_all()

    def consume(self, limit: Any = None, timeout: float | None = None, safety_interval=1, **kw):
        """kombu's consume loop (without its ``limit``), that also settles what handler
        threads finished, acknowledges the batch of handled messages once no next message
        arrives within ``ACK_IDLE``, and waits for the messages in hand before it returns."""
        idle = 0.0
        checked = time.monotonic()
        with self.consumer_context(**kw) as (conn, _channel, _consumers):
            while not self.should_stop:
                self.on_iteration()
                self._collect(block=False)
                busy = self._executor is not None and self._executor.unfinished > 0
                wait = ACK_IDLE if self._acks.pending or busy else safety_interval
                try:
                    conn.drain_events(timeout=wait)
                except TimeoutError:
                    self._collect(block=False)
                    if self._acks.pending:
                        self._flush_acks()
                    if wait == safety_interval or time.monotonic() - checked >= safety_interval:
                        conn.heartbeat_check()  # as kombu's loop does: once an idle interval
                        checked = time.monotonic()
                    if wait != safety_interval:
                        continue
                    idle += safety_interval
                    if timeout and idle >= timeout:
                        raise
                except OSError:
                    if not self.should_stop:
                        raise
                else:
                    idle = 0.0
                    yield
            self._collect(block=True)
            self._flush_acks()

    def _flush_acks(self) -> None:
        try:
            self._acks.flush()
        except self.connection.channel_errors as exc:
            raise ConnectionError(f"channel failed while acknowledging: {exc}") from exc

    def stop(self) -> None:
        """Stop taking messages; ``run()`` returns after the ones in hand."""
        self.should_stop = True

    @property
    def failed_fire_queues(self) -> list:
        """The retry queues and the dead-letter queue of this service (kombu ``Queue``s)."""
        return self._failed.queues

    @property
    def retry_queues(self) -> list:
        """The retry queues of this service, shortest delay first (kombu ``Queue``s)."""
        return list(self._failed.retry_queues.values())

    @property
    def dead_letter_queue(self) -> str:
        """The name of this service's dead-letter queue, as on the broker."""
        return self._failed.dead_queue.name

    def dead_letter_depth(self) -> int:
        """How many messages wait in ``<service>.dead`` (0 before it is declared).

        Safe from any thread (a metrics endpoint, ``epumctl``): it asks the
        broker on a connection of its own, never on the consumer's channel.
        """
        with self.connection.clone() as conn:
            return queue_depth(conn, self._failed.dead_queue.name)

    # one message -----------------------------------------------------------
    def _on_message(self, message) -> None:
        headers = message.headers or {}
        route = reply_route(headers, message.properties or {})
        refused = message.content_type != envelope.CONTENT_TYPE
        delivery = self._acks.received(message)
        read = self.requests.read(message, headers, route)
        if isinstance(read, Request) and self._executor is not None:
            alone = read.order_key == SERIAL
            if not (read.quick and self._executor.free_for(read.order_key, alone)):
                job = functools.partial(self._run_off_thread, delivery, route, read)
                self._executor.submit(read.order_key, job, alone=alone)
                return
        outcome = read if isinstance(read, Outcome) else self.requests.run(read, route)
        self._settle(delivery, route, outcome, refused)

    def _run_off_thread(
        self, delivery: Delivery, route: ReplyRoute | None, request: Request
    ) -> None:
        """On a handler thread: run ``request``, publish its reply, and leave the rest to
        the consumer's thread."""
        outcome = self.requests.run(request, route)
        if route is not None:
            self._send_reply(route, outcome.payload, pooled=True)
        self._finished.put((delivery, route, outcome))

    def _collect(self, block: bool) -> None:
        """Settle what handler threads finished (``block``: wait for those still running)."""
        if self._executor is None:
            return  # nothing runs off the consumer's thread
        if block:
            self._executor.wait_idle(STOP_GRACE)
        while not self._finished.empty():  # this thread is the only one taking from it
            delivery, route, outcome = self._finished.get_nowait()
            self._settle(delivery, route, outcome, refused=False, replied=True)

    def on_decode_error(self, message, exc: Exception) -> None:
        """A message kombu could not unpack (a bad ``compression`` header): answered with
        a ``BadRequestError`` when a reply was asked for, and rejected, never requeued."""
        log.warning("refused a message that could not be decoded: %s", short(exc, 200))
        error = BadRequestError(f"refused: the message could not be decoded: {short(exc, 200)}")
        outcome = Outcome(envelope.reply_error(error), str(error))
        route = reply_route(message.headers or {}, message.properties or {})
        self._settle(self._acks.received(message), route, outcome, refused=True)

    def _settle(
        self,
        delivery: Delivery,
        route: ReplyRoute | None,
        outcome: Outcome,
        refused: bool,
        replied: bool = False,
    ) -> None:
        """On the consumer's thread: copy a failed fire where it goes, reply (if asked and
        not ``replied`` yet), then ack, or reject without requeue if ``refused``.  A
        delivery of a channel since lost is left alone (the broker delivers it again)."""
        if not delivery.in_hand:
            return
        message = delivery.message
        if route is None and outcome.failure is not None:
            self._copy_failed(message, outcome)
        try:
            if route is not None and not replied:
                self._send_reply(route, outcome.payload)
            if refused:
                message.reject(requeue=False)
                self._acks.settled(delivery)
            else:
                self._acks.done(delivery)
                if route is not None:  # a call: answered once, so acknowledged at once
                    self._acks.flush()
        except self.connection.channel_errors as exc:
            # the channel is gone with the consumer on it: make the mixin reconnect
            raise ConnectionError(f"channel failed while replying: {exc}") from exc

    def _copy_failed(self, message, outcome: Outcome) -> None:
        """Copy a fire that failed where ``FailedFires`` sends it; a failed channel makes
        the mixin reconnect (the unacked original comes back), and a copy the broker
        cannot take at all is logged, not raised."""
        reason = outcome.failure
        try:
            assert self._producer is not None
            self._failed.copy(self._producer, message, outcome)
        except (*self.connection.connection_errors, *self.connection.channel_errors) as exc:
            raise ConnectionError(f"channel failed while copying a message: {exc}") from exc
        except Exception as exc:  # e.g. headers the wire cannot encode: requeueing would loop
            log.error(
                "could not copy a failed message (%s): %s: %s", reason, type(exc).__name__, exc
            )

    def _send_reply(self, route: ReplyRoute, payload: str, pooled: bool = False) -> None:
        """Publish the reply, on the consumer's channel or (``pooled``, from a handler
        thread) a pooled connection; a route that cannot be published to is logged, not
        raised (raising would stop the consumer and leave the request to be redelivered
        forever), and so is a pooled connection that stays down."""
        options = reply_options(route, self._exchange.name)
        try:
            if not pooled:
                assert self._producer is not None
                self._producer.publish(payload, **options)
                return
            assert self._reply_pool is not None
            with self._reply_pool.acquire(block=True, timeout=STOP_GRACE) as producer:
                policy = {"max_retries": REPLY_RETRIES, "interval_start": 0.1}
                producer.publish(payload, retry=True, retry_policy=policy, **options)
        except (*self.connection.connection_errors, *self.connection.channel_errors):
            if not pooled:
                raise
            log.error("could not reply to %.100r: the broker stayed unreachable", route.routing_key)
        except Exception as exc:  # e.g. a reply-to longer than a routing key may be
            log.error(
                "could not reply to %.100r: %s: %s", route.routing_key, type(exc).__name__, exc
            )
