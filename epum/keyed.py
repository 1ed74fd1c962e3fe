"""Running work on a thread pool, in submission order per key and side by side across keys
(the RPC server's handler threads, the decider's decision-log writes).

``KeyedExecutor.submit(key, job)`` runs ``job`` on one of ``workers``
threads of a ``concurrent.futures.ThreadPoolExecutor``, after every job
submitted before it with the same key has finished, and alongside jobs of
other keys.  This is the ordering kopf gives each Kubernetes object: one
queue per key, drained by one pool thread at a time, so a key's jobs never
overlap and never overtake each other, while a slow key holds up only its
own jobs.  A key that has no job waiting costs nothing (its queue goes once
it is empty).

``submit(key, job, alone=True)`` runs ``job`` by itself: after every job
submitted before it has finished, and before any job submitted after it
starts, as if everything ran on one thread in submission order.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

Job = Callable[[], None]

#: The key a job that runs alone is logged under.
ALONE = "<alone>"


class KeyedExecutor:
    """Runs jobs on ``workers`` threads, one key's jobs one at a time in submission order.

    The threads are named ``epum-<name>_<n>``.
    """

    def __init__(self, workers: int, name: str = "handler"):
        if workers < 1:
            raise ValueError(f"a keyed executor needs at least 1 worker, not {workers}")
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"epum-{name}")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        # the jobs waiting behind the one running, per key with a job running
        self._waiting: dict[Hashable, collections.deque[Job]] = {}
        self._started = 0  # jobs handed to a key's queue and not finished
        self._unfinished = 0  # every job submitted and not finished
        # a job that runs alone, waiting for the ones before it; and what came after it
        self._alone: Job | None = None
        self._held: collections.deque[tuple[Hashable, Job, bool]] = collections.deque()
        self._closed = False

    @property
    def unfinished(self) -> int:
        """Jobs submitted and not finished yet (running or waiting)."""
        return self._unfinished

    def submit(self, key: Hashable, job: Job, alone: bool = False) -> None:
        """Run ``job`` after the jobs submitted with ``key`` before it (``alone``: after
        every job submitted before it, and before every job submitted after it).

        ``job`` should not raise: what it raises is logged and dropped, and
        the next job runs.  RuntimeError once ``shutdown`` was called.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is shut down")
            self._unfinished += 1
            if self._alone is not None or self._held:
                self._held.append((key, job, alone))
            else:
                self._place(key, job, alone)

    def free_for(self, key: Hashable, alone: bool = False) -> bool:
        """True if a job of ``key`` (``alone``: any job alone) submitted now would start
        at once: nothing it must follow is waiting or running.  The submitter may then
        run it itself instead, as long as it submits nothing meanwhile."""
        with self._lock:
            if alone:
                return self._unfinished == 0
            return self._alone is None and not self._held and key not in self._waiting

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted job has finished; False if ``timeout`` came first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def shutdown(self) -> None:
        """Take no more jobs; the ones submitted still run (this does not wait for them),
        and the threads end once they have."""
        with self._lock:
            self._closed = True
            if self._unfinished == 0:
                self._pool.shutdown(wait=False)

    # with the lock held --------------------------------------------------------
    def _place(self, key: Hashable, job: Job, alone: bool) -> None:
        """Start ``job`` now or queue it behind its key (or, alone, behind everything)."""
        if alone:
            if self._started == 0:
                self._start(ALONE, job)
                self._alone = job
            else:
                self._alone = job  # started once the jobs before it have finished
            return
        self._started += 1
        queue = self._waiting.get(key)
        if queue is not None:
            queue.append(job)
        else:
            self._waiting[key] = collections.deque()
            self._pool.submit(self._drain, key, job)

    def _start(self, key: Hashable, job: Job) -> None:
        self._started += 1
        self._waiting[key] = collections.deque()
        self._pool.submit(self._drain, key, job)

    def _finished(self, key: Hashable, job: Job) -> None:
        self._started -= 1
        self._unfinished -= 1
        if key == ALONE and job is self._alone:
            self._alone = None
            while self._held and self._alone is None:
                self._place(*self._held.popleft())
        elif self._alone is not None and self._started == 0:
            self._start(ALONE, self._alone)
        if self._unfinished == 0:
            self._idle.notify_all()
            if self._closed:
                self._pool.shutdown(wait=False)

    # on a pool thread ------------------------------------------------------------
    def _drain(self, key: Hashable, job: Job) -> None:
        while True:
            try:
                job()
            except Exception:
                log.exception("a job of key %.100r failed", key)
            with self._lock:
                queue = self._waiting[key]
                if not queue:
                    del self._waiting[key]
                    self._finished(key, job)
                    return
                self._finished(key, job)
                job = queue.popleft()
