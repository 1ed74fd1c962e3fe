"""The queues a service consumes: its one queue, or that queue and its shards.

One queue is one RabbitMQ process, so however many workers share it, the
broker passes its messages at one core's pace.  With ``queue_shards`` N > 1
(``server.amqp.queue_shards``) the requests are spread over N shard queues
``<service>.shard.<i>`` by RabbitMQ's consistent-hash exchange
(``<service>.shards``, plugin ``rabbitmq_consistent_hash_exchange``),
which hashes each message's ``sender`` header: an agent's heartbeats, a
provisioner's reports and a caller's requests each stay in one shard, in
order, and a message with no sender goes to one shard as well.  Clients
change nothing: they publish to the system's exchange under the service's
name as before, and that binding now leads to the shard exchange (an
exchange-to-exchange binding) instead of to the service queue.

The service queue is still declared and consumed, no longer bound: what
waited in it from before, and the retried reports (which RabbitMQ puts back
into it by name, ``epum.messaging.retry``), are still served.  Every worker
of a service must have the same ``queue_shards``: a worker with 1 binds the
service queue again, and the messages then go to both.  Going back to 1 is
done by hand: stop the workers, delete the ``<service>.shards`` exchange
(and the shard queues once they are drained), start them with 1.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from epum.errors import ConfigError
from epum.messaging.connection import exchange, service_queue
from epum.messaging.names import Names

#: The RabbitMQ plugin that shards need (``rabbitmq-plugins enable <it>``).
SHARDING_PLUGIN = "rabbitmq_consistent_hash_exchange"
#: The header whose value picks a request's shard.
SHARD_BY = "sender"


def shard_names(service: str, shards: int) -> list[str]:
    """The names of ``service``'s queue shards (before the sysname): none for 1."""
    return [f"{service}.shard.{index}" for index in range(shards)] if shards > 1 else []


def shard_exchange(names: Names, service: str) -> Exchange:
    """The consistent-hash exchange that deals ``service``'s requests to its shards."""
    return Exchange(
        f"{names.qualify(service)}.shards",
        type="x-consistent-hash",
        durable=True,
        auto_delete=False,
        arguments={"hash-header": SHARD_BY},
    )


def shard_queues(names: Names, service: str, shards: int) -> list[Queue]:
    """The durable queue shards of ``service``, each of equal weight in the hash."""
    dealer = shard_exchange(names, service)
    return [
        Queue(
            names.qualify(name),
            dealer,
            routing_key="1",  # the consistent-hash exchange reads a binding's key as its weight
            durable=True,
            auto_delete=False,
        )
        for name in shard_names(service, shards)
    ]


class ServiceQueues:
    """What one service declares on a channel, and the queues its consumer reads."""

    def __init__(self, names: Names, service: str, shards: int = 1):
        if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
            raise ValueError(f"a service has at least 1 queue shard, not {shards!r}")
        self.names = names
        self.service = service
        self.shards = shards
        self.queue = service_queue(names, service)
        self.shard_queues = shard_queues(names, service, shards)

    @property
    def all(self) -> list[Queue]:
        """Every queue the service's consumer reads: the service queue, then the shards."""
        return [self.queue, *self.shard_queues]

    @property
    def names_on_broker(self) -> list[str]:
        """The names of ``all`` as the broker knows them."""
        return [q.name for q in self.all]

    def declare(self, channel: Any, channel_errors: tuple[type[BaseException], ...]) -> None:
        """Declare the queues, their exchanges and bindings on ``channel`` (a new one).

        With shards, the service queue is declared unbound (an earlier binding is
        removed) and the system's exchange leads to the shard exchange instead.
        ``ConfigError`` naming the plugin when the broker does not know the
        consistent-hash exchange; ``channel_errors`` are the transport's.
        """
        if not self.shard_queues:
            self.queue.bind(channel).declare()
            return
        system, dealer = exchange(self.names), shard_exchange(self.names, self.service)
        try:
            dealer.bind(channel).declare()
        except channel_errors as exc:
            raise ConfigError(
                f"server.amqp.queue_shards is {self.shards}, and the broker refused the "
                f"x-consistent-hash exchange ({exc}): enable its plugin with "
                f"'rabbitmq-plugins enable {SHARDING_PLUGIN}', or set queue_shards to 1"
            ) from None
        system.bind(channel).declare()
        dealer.bind(channel).bind_to(system, routing_key=self.queue.name)
        Queue(self.queue.name, durable=True, auto_delete=False).bind(channel).declare()
        self.queue.bind(channel).unbind_from(system, routing_key=self.queue.name)
        for shard in self.shard_queues:
            shard.bind(channel).declare()
