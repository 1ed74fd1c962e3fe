"""Simulated workers on the broker: each running instance drains a work queue.

The simulated provisioner (``epum.sim.provisioner --work-time S``) gives
every running instance whose launch vars name a ``work_queue`` a worker
here: a consumer of that queue, with a prefetch of one, that holds each
message ``work_time`` seconds (its "work") and then acknowledges it.  A
domain of n instances so drains its queue at n / ``work_time`` messages a
second, and the queue's figures (ready, unacked, consumers) are what the
``rabbitmq`` sensor source reads: a backlog grows the domain, the grown
domain drains it faster, and the empty queue shrinks it again.

One connection and one thread serve every worker (kombu's channels are not
thread-safe), each worker on a channel of its own so its prefetch is its
own.  ``want({instance_id: queue})`` says which instances run now; between
deliveries the thread starts a worker for each new one and closes the
channel of each one gone, which hands the message in its hands back to the
queue (a terminated instance's job is not lost).  A queue that does not
exist yet is declared durable (not auto-deleted); one that exists is used
as it is.  Messages are never decoded: any body is one unit of work.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Consumer, Queue
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)

#: Longest wait for a delivery between two looks at ``want`` (s).
POLL = 0.1


@dataclass
class _Worker:
    queue: str
    channel: Any
    consumer: Consumer
    #: The message being worked on and when its work is done (clock time).
    in_hand: tuple[Any, float] | None = None


class WorkQueueConsumers:
    """A worker per wanted instance, each draining its queue at one message per
    ``work_time`` seconds, until ``stop()``.

    ``run()`` blocks (a thread of its own); a lost broker connection is
    logged and made again after ``retry`` seconds, every worker starting
    anew (the broker has requeued what they held).  ``ready`` is set while
    connected; ``consuming`` maps each instance with a worker to its queue
    and ``done`` counts the messages acknowledged.
    """

    def __init__(
        self,
        connection: Connection,
        work_time: float = 1.0,
        *,
        retry: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not work_time > 0:
            raise ValueError(f"work_time must be positive, got {work_time!r}")
        self.connection = connection
        self.work_time = work_time
        self.retry = retry
        self.clock = clock
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._wanted: dict[str, str] = {}
        self._workers: dict[str, _Worker] = {}
        self._consuming: dict[str, str] = {}
        #: Instances whose queue could not be declared, and when to try again.
        self._refused: dict[str, float] = {}
        self._done = 0
        self._busy = 0

    # any thread ------------------------------------------------------------
    def want(self, queues: Mapping[str, str]) -> None:
        """The instances running now and the queue each drains; the others' workers stop."""
        with self._lock:
            self._wanted = dict(queues)

    @property
    def consuming(self) -> dict[str, str]:
        """Instance id -> queue, for every worker consuming now."""
        with self._lock:
            return dict(self._consuming)

    @property
    def busy(self) -> int:
        """Workers holding a message now (each holds at most one)."""
        with self._lock:
            return self._busy

    @property
    def done(self) -> int:
        """Messages worked on and acknowledged so far."""
        with self._lock:
            return self._done

    def stop(self) -> None:
        """Ask ``run()`` to close every worker's channel (in-hand work goes back) and return."""
        self._stop.set()

    # the consumer's thread -------------------------------------------------
    def run(self) -> None:
        """Serve the wanted workers until ``stop()``; after a broker loss or any other
        error, connect and start every worker again."""
        errors = (OSError, OperationalError, *self.connection.connection_errors)
        while not self._stop.is_set():
            try:
                self.connection.ensure_connection(max_retries=1)
                self.ready.set()
                self._serve()
            except errors as exc:
                log.warning("work queues' broker connection lost (%s); retrying", exc)
            except Exception:  # a channel closed under a worker, or worse: all anew
                log.exception("work queues failed; starting every worker again")
            finally:
                self.ready.clear()
                self._forget()
            if not self._stop.is_set():
                with contextlib.suppress(Exception):
                    self.connection.close()
                self._stop.wait(self.retry)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._sync()
            self._finish_due()
            with contextlib.suppress(TimeoutError):  # nothing came: look at want again
                self.connection.drain_events(timeout=self._next_wait())

    def _next_wait(self) -> float:
        now = self.clock()
        dues = [w.in_hand[1] for w in self._workers.values() if w.in_hand is not None]
        return min([POLL, *(max(due - now, 0.0) for due in dues)]) or 0.001

    def _sync(self) -> None:
        with self._lock:
            wanted = dict(self._wanted)
        for instance_id in sorted(set(self._workers) - set(wanted)):
            self._close(self._workers.pop(instance_id))
            self._count_busy()
        now = self.clock()
        for instance_id in sorted(set(wanted) - set(self._workers)):
            if self._refused.get(instance_id, now) > now:
                continue
            worker = self._start(instance_id, wanted[instance_id])
            if worker is None:
                self._refused[instance_id] = now + self.retry
            else:
                self._refused.pop(instance_id, None)
                self._workers[instance_id] = worker
        for instance_id in set(self._refused) - set(wanted):
            del self._refused[instance_id]
        for instance_id, worker in list(self._workers.items()):
            if wanted[instance_id] != worker.queue:  # relaunched on another queue
                self._close(self._workers.pop(instance_id))
        with self._lock:
            self._consuming = {i: w.queue for i, w in self._workers.items()}

    def _start(self, instance_id: str, queue: str) -> _Worker | None:
        channel = self.connection.channel()
        try:
            channel.queue_declare(queue=queue, passive=True)
        except self.connection.channel_errors:  # no such queue: that channel is closed
            channel = self.connection.channel()
            try:
                channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            except self.connection.channel_errors as exc:
                log.warning("instance %s cannot drain queue %r: %s", instance_id, queue, exc)
                return None
        consumer = Consumer(
            channel,
            queues=[Queue(queue, no_declare=True)],
            on_message=lambda message: self._take(instance_id, message),
            prefetch_count=1,
        )
        consumer.consume()
        log.info("instance %s drains queue %r", instance_id, queue)
        return _Worker(queue, channel, consumer)

    def _take(self, instance_id: str, message: Any) -> None:
        worker = self._workers.get(instance_id)
        if worker is not None:  # else its channel is closed: the broker requeues it
            worker.in_hand = (message, self.clock() + self.work_time)
            self._count_busy()

    def _finish_due(self) -> None:
        now = self.clock()
        for worker in self._workers.values():
            if worker.in_hand is not None and worker.in_hand[1] <= now:
                worker.in_hand[0].ack()
                worker.in_hand = None
                with self._lock:
                    self._done += 1
        self._count_busy()

    def _count_busy(self) -> None:
        busy = sum(w.in_hand is not None for w in self._workers.values())
        with self._lock:
            self._busy = busy

    def _close(self, worker: _Worker) -> None:
        with contextlib.suppress(Exception):
            worker.channel.close()  # the unacknowledged message goes back to the queue

    def _forget(self) -> None:
        for worker in self._workers.values():
            self._close(worker)
        self._workers.clear()
        with self._lock:
            self._consuming = {}
            self._busy = 0


# the other side of the queue: whoever hands out the work ---------------------
def declare_work_queue(connection: Connection, queue: str) -> None:
    """Declare ``queue`` as the workers would: durable, not auto-deleted."""
    Queue(queue, durable=True, auto_delete=False).bind(connection.default_channel).declare()


def publish_work(connection: Connection, queue: str, jobs: int) -> None:
    """Publish ``jobs`` messages (``{"job": n}``) to ``queue`` through the default exchange."""
    with connection.Producer() as producer:
        for n in range(jobs):
            producer.publish({"job": n}, routing_key=queue, retry=True)


def queue_depth(connection: Connection, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of ``queue`` now, by a passive declare (kombu's
    NotFound when it does not exist)."""
    ok = connection.default_channel.queue_declare(queue=queue, passive=True)
    return int(ok.message_count), int(ok.consumer_count)


def delete_work_queue(connection: Connection, queue: str) -> None:
    """Delete ``queue`` with what it holds (a missing queue is fine)."""
    Queue(queue).bind(connection.default_channel).delete()
