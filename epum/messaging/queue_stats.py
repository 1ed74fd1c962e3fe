"""What the broker says of a service's queues, for ``epumctl status``."""

from __future__ import annotations

from typing import Any

from kombu import Connection

from epum.messaging.exceptions import BrokerUnavailableError
from epum.messaging.names import Names
from epum.messaging.service_queues import shard_names


def service_queue_stats(
    connection: Connection, names: Names, service: str, shards: int = 1
) -> list[dict[str, Any]]:
    """``{queue, messages, consumers}`` of ``service``'s queue, its shards (with
    ``shards`` > 1) and its ``.dead`` queue (a queue that does not exist is left out);
    ``BrokerUnavailableError`` when the broker cannot be reached."""
    try:
        connection.ensure_connection(max_retries=1)
    except connection.connection_errors as exc:
        raise BrokerUnavailableError(f"cannot connect to the broker: {exc}") from None
    out = []
    for name in (service, *shard_names(service, shards), f"{service}.dead"):
        qualified = names.qualify(name)
        with connection.channel() as channel:
            try:
                ok = channel.queue_declare(qualified, passive=True)
            except connection.channel_errors:
                continue
        out.append({"queue": name, "messages": ok.message_count, "consumers": ok.consumer_count})
    return out
