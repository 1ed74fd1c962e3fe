"""Agents on the broker: each live agent consumes a queue of its own.

EPUM's doctor sends ``dump_state`` (a fire) to an agent at the address it
heartbeats from (``agent-<node_id>``); ``AgentQueues`` gives each live
agent (the simulated ones of ``epum.sim``) that queue, named and bound as every dashi service
queue is (``<sysname>.agent-<node_id>`` on the system's exchange), and hands each
``dump_state`` to a callback.

One connection and one kombu ``Consumer`` serve every agent (no thread per
agent): ``want(addresses)`` says which agents live, and the consumer's own
thread adds and cancels their queues between deliveries (kombu's channel is
not thread-safe).  The queues are not durable and auto-delete, so an agent's
queue goes with its last consumer: when its node stops running, or when the
process ends.  Any other op is acknowledged and logged; a body that is not
a request is acknowledged and dropped (never requeued).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from kombu import Connection, Consumer, Queue
from kombu.mixins import ConsumerMixin

from epum.errors import BadRequestError
from epum.messaging import envelope
from epum.messaging.connection import exchange
from epum.messaging.edge import decode_body
from epum.messaging.names import Names
from epum.settings.limits import LimitSettings

log = logging.getLogger(__name__)


def agent_queue(names: Names, address: str) -> Queue:
    """The queue of the agent at ``address``: bound under its own name, gone with its
    last consumer."""
    qualified = names.qualify(address)
    return Queue(qualified, exchange(names), routing_key=qualified, durable=False, auto_delete=True)


class AgentQueues(ConsumerMixin):
    """Consumes the queue of every agent named by the latest ``want`` until ``stop()``.

    ``dump_state(address, mock_timestamp)`` is called, on the consumer's
    thread, for each ``dump_state`` request an agent's queue receives.

    ``run()`` blocks (a thread of its own) and survives broker connection
    loss as kombu's ``ConsumerMixin`` does, declaring the wanted queues
    again; ``consuming`` is the set of addresses whose queues it consumes now.
    """

    def __init__(
        self,
        connection: Connection,
        names: Names,
        dump_state: Callable[[str, Any], None],
        limits: LimitSettings | None = None,
    ):
        self.connection = connection
        self.names = names
        self.dump_state = dump_state
        self.limits = limits or LimitSettings()
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._wanted: frozenset[str] = frozenset()
        self._consuming: set[str] = set()
        self._consumer: Consumer | None = None

    # any thread ------------------------------------------------------------
    def want(self, addresses: Iterable[str]) -> None:
        """The agents that live now: their queues are consumed, every other one cancelled."""
        with self._lock:
            self._wanted = frozenset(addresses)

    @property
    def consuming(self) -> frozenset[str]:
        """The addresses whose queues are consumed now."""
        with self._lock:
            return frozenset(self._consuming)

    def stop(self) -> None:
        """Ask ``run()`` to return after the delivery in hand."""
        self.should_stop = True

    # the consumer's thread -------------------------------------------------
    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Consumer]:
        """One consumer for every agent queue (queues added in ``on_iteration``)."""
        self._consumer = consumer_cls(queues=[], callbacks=[self._on_message], accept=["json"])
        with self._lock:
            self._consuming = set()
        return [self._consumer]

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any, **kw: Any) -> None:
        """Add the wanted queues at once, then say the service is ready."""
        self.on_iteration()
        self.ready.set()

    def on_connection_error(self, exc: BaseException, interval: float) -> None:
        """Log a lost broker; kombu reconnects after ``interval``."""
        self.ready.clear()
        log.warning("agents' broker connection lost (%s); retrying in %.1f s", exc, interval)

    def on_iteration(self) -> None:
        """Bring the consumed queues in line with the latest ``want``."""
        consumer = self._consumer
        if consumer is None:
            return
        with self._lock:
            wanted, have = self._wanted, set(self._consuming)
        for address in sorted(have - wanted):
            consumer.cancel_by_queue(self.names.qualify(address))
            have.discard(address)
        new = sorted(wanted - have)
        for address in new:
            consumer.add_queue(agent_queue(self.names, address))
            have.add(address)
        if new:
            consumer.consume()
        with self._lock:
            self._consuming = have

    def _on_message(self, body: Any, message: Any) -> None:
        address = self.names.unqualify(message.delivery_info.get("routing_key", ""))
        try:
            op, args = envelope.parse_request(decode_body(message, self.limits))
        except BadRequestError as exc:
            log.warning("agent %s dropped a message: %s", address, exc)
            message.ack()
            return
        if op == "dump_state":
            self.dump_state(address, args.get("mock_timestamp"))
        else:
            log.warning("agent %s has no op %s; dropped", address, op)
        message.ack()
