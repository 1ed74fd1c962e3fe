"""The bare consumer: the least a service on the broker does, as a process of its own.

``python -m bench.bare --amqp-url URL --queue NAME [--prefetch N] [--chunked]`` consumes
the durable queue ``NAME`` (declared and bound to ``--exchange`` under its
own name) with kombu at prefetch ``N``; for each message it decodes the JSON
body, publishes it back to the ``reply_to`` property with the
``correlation_id`` when there is one (through the default exchange, as a
direct reply-to answer goes), and acks.  Nothing else: no dispatch, no
checks, no store.  It stops on SIGTERM.  With ``--chunked`` it reads the
socket as epum's worker does (``epum.messaging.chunked_reads``), which tells
the worker's handling from what it gains by reading in chunks.

``BareConsumer`` runs it as a subprocess for a benchmark, so it gets a
process and an interpreter of its own, as the worker it is compared with
does.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from kombu import Connection, Consumer, Exchange, Producer, Queue


def bare_queue(name: str, exchange: str) -> Queue:
    """The bare consumer's queue: durable, bound to ``exchange`` under its own name."""
    return Queue(
        name,
        Exchange(exchange, type="direct", durable=False, auto_delete=False),
        routing_key=name,
        durable=True,
        auto_delete=False,
    )


def serve(
    url: str, queue: Queue, prefetch: int, stop: threading.Event, chunked: bool = False
) -> None:
    """Consume ``queue`` until ``stop`` is set: decode, reply if asked, ack.  ``chunked``:
    on the transport epum's worker reads the socket with (``epum.messaging.chunked_reads``)
    instead of kombu's own."""
    transport = None
    if chunked:
        from epum.messaging.chunked_reads import ChunkedAmqpTransport as transport
    with Connection(url, transport=transport) as conn:
        channel = conn.channel()
        producer = Producer(channel, auto_declare=False)

        def on_message(message) -> None:
            body = json.loads(message.body)
            reply_to = message.properties.get("reply_to")
            if reply_to:
                producer.publish(
                    json.dumps(body),
                    routing_key=reply_to,
                    correlation_id=message.properties.get("correlation_id"),
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=1,
                )
            message.ack()

        consumer = Consumer(channel, queues=[queue], on_message=on_message, prefetch_count=prefetch)
        with consumer:
            while not stop.is_set():
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    continue


def main(argv: list[str] | None = None) -> int:
    """Serve the bare queue until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--exchange", default="default_dashi_exchange")
    parser.add_argument("--prefetch", type=int, default=1)
    parser.add_argument("--chunked", action="store_true", help="read as epum's worker does")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serve(args.amqp_url, bare_queue(args.queue, args.exchange), args.prefetch, stop, args.chunked)
    return 0


class BareConsumer:
    """``python -m bench.bare`` as a subprocess (a context manager; stopped on exit).

    The queue is declared by the caller before (so messages may wait in it);
    ``pid`` is the process to pause and resume.
    """

    def __init__(self, url: str, queue: str, exchange: str, prefetch: int, chunked: bool = False):
        self.argv = [
            sys.executable,
            "-m",
            "bench.bare",
            "--amqp-url",
            url,
            "--queue",
            queue,
            "--exchange",
            exchange,
            "--prefetch",
            str(prefetch),
            *(["--chunked"] if chunked else []),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The consumer's process id (once started)."""
        assert self.proc is not None, "not started"
        return self.proc.pid

    def __enter__(self) -> BareConsumer:
        root = Path(__file__).resolve().parents[1]  # ``bench`` is imported from the checkout
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, cwd=root)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGCONT)  # in case it was left paused
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


if __name__ == "__main__":
    raise SystemExit(main())
