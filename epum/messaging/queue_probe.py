"""Read a queue's depth and consumers over plain AMQP (a passive declare).

The rabbitmq sensor source falls back to this when the RabbitMQ management
API does not answer; the worker hands it to the source as
``SensorCredentials.amqp_queue_probe`` (the sensors package may not import
kombu).
"""

from __future__ import annotations

from collections.abc import Callable

from kombu import Connection


def amqp_queue_probe(
    url: str, connect_timeout: float = 5.0
) -> Callable[[str, str], tuple[int, int]]:
    """A ``probe(vhost, queue) -> (ready, consumers)`` against the broker at ``url``.

    The vhost replaces the URL's own.  A missing queue raises kombu's
    NotFound (a channel error), a dead broker its connection error.
    """

    def probe(vhost: str, queue: str) -> tuple[int, int]:
        conn = Connection(url, connect_timeout=connect_timeout, virtual_host=vhost)
        with conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            try:
                ok = channel.queue_declare(queue=queue, passive=True)
                return int(ok.message_count), int(ok.consumer_count)
            finally:
                channel.close()

    return probe
