"""Simulated workers draining a RabbitMQ work queue: one per running instance.

Each worker takes one message at a time (``basic_get``), spends ``work_time``
seconds on it (a wait on its stop event) and acks it; ``update(ids)`` starts
a worker for each new id and stops those of ids gone, so a domain's size is
its queue's drain rate.  Test-side: only ``epum.messaging`` imports kombu.
"""

from __future__ import annotations

import threading

from kombu import Connection


class QueueWorkers:
    """Workers for ``queue`` on the broker at ``url``, keyed by instance id."""

    def __init__(self, url: str, queue: str, work_time: float = 0.5):
        self.url = url
        self.queue = queue
        self.work_time = work_time
        self._lock = threading.Lock()
        self._workers: dict[str, tuple[threading.Event, threading.Thread]] = {}
        self.done = 0
        self._closed = False

    def update(self, instance_ids: list[str]) -> None:
        """Run one worker per id in ``instance_ids``; stop the others (all, once closed)."""
        with self._lock:
            wanted = set() if self._closed else set(instance_ids)
            for gone in set(self._workers) - wanted:
                self._workers.pop(gone)[0].set()
            for new in wanted - set(self._workers):
                stop = threading.Event()
                thread = threading.Thread(target=self._work, args=(stop,), daemon=True)
                self._workers[new] = (stop, thread)
                thread.start()

    def _work(self, stop: threading.Event) -> None:
        with Connection(self.url) as conn:
            channel = conn.channel()
            while not stop.is_set():
                message = channel.basic_get(self.queue, no_ack=False)
                if message is None:
                    stop.wait(0.1)
                    continue
                stop.wait(self.work_time)
                channel.basic_ack(message.delivery_tag)
                with self._lock:
                    self.done += 1

    def close(self) -> None:
        """Stop every worker and wait for them (before the queue may be deleted)."""
        with self._lock:
            self._closed = True
            threads = [t for _, t in self._workers.values()]
        self.update([])
        for thread in threads:
            thread.join(5)
