"""The state-scale benchmark's last phase: the same store decided in two shares by two workers.

Run by ``bench.state_scale`` once its single decider has been measured and
its workers are gone (``epumanagement.decider_partitions`` must be the same
on every worker of a store, so none of the single-decider workers may stay).
Two new workers with ``decider_partitions: 2`` load their caches, kazoo's
``SetPartitioner`` deals them one share each, and then:

- the decider pass at steady state is the slower of the two workers'
  median full pass (each pass covers its share only), against the single
  decider's steady pass of the same run (the ratio is the share of the
  work one decider is left with: 0.5 would be a perfect split);
- a share's failover: one worker is killed (SIGKILL), and the time runs
  until the other has passed over both shares (the recipe deals every share
  again when the party changes, so the survivor starts both anew), against
  the ZooKeeper session timeout, what detecting the death costs.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from typing import Any

from bench.common import Figure, Target

SHARES = 2
PASS_STAT = "decider.pass"


def party_watch(zk: Any, path: str) -> tuple[list[tuple[float, int]], threading.Lock]:
    """``(seen, lock)``: every change of the children of ``path`` as (time, how many)."""
    from kazoo.recipe.watchers import ChildrenWatch

    seen: list[tuple[float, int]] = []
    lock = threading.Lock()

    def note(children: list[str]) -> None:
        with lock:
            seen.append((time.monotonic(), len(children)))

    zk.ensure_path(path)
    ChildrenWatch(zk, path, note)
    return seen, lock


def median_pass(run: Any, worker: Any, passes: int, timeout: float) -> float:
    """The median of ``worker``'s next ``passes`` full passes (the one under way skipped), ms."""
    stat = f"{worker.name}.{PASS_STAT}"
    heard = len(run.sink.timings(stat))
    try:
        run.sink.wait_for(stat, heard + 1, timeout)
        return statistics.median(
            run.sink.wait_for(stat, heard + 2 + k, timeout).ms for k in range(passes)
        )
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n--- {worker.name}'s log ---\n{worker.log_tail()}") from None


def shared_figures(
    run: Any,
    cached_znodes: int,
    single_pass_ms: float,
    passes: int,
    load_timeout: float,
    pass_timeout: float,
    judged: bool,
) -> list[Figure]:
    """Start two share-deciding workers on ``run``'s store and take this phase's figures."""
    party, lock = party_watch(run.zk, f"{run.base}/elections/decider-shares/party")
    watches = run.watches()
    first = run.worker("share-a", shares=SHARES)
    second = run.worker("share-b", shares=SHARES)
    run.wait_watches(watches + 4 * cached_znodes, load_timeout)
    slowest = max(median_pass(run, w, passes, pass_timeout) for w in (first, second))

    stat = f"{second.name}.{PASS_STAT}"
    with lock:
        members = party[-1][1]
    killed = time.monotonic()
    os.kill(first.pid, signal.SIGKILL)
    deadline = killed + run.session_timeout + pass_timeout
    while True:
        with lock:
            gone = [t for t, n in party if t >= killed and n < members]
        passed = [t for t in run.sink.timings(stat) if gone and t.arrived > gone[0]]
        if len(passed) >= SHARES:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the survivor passed {len(passed)} of {SHARES} shares after the kill\n"
                f"--- its log ---\n{second.log_tail()}"
            )
        time.sleep(0.1)
    return [
        Figure(
            f"state scale: decider pass at steady state, {SHARES} shares on {SHARES} workers",
            slowest,
            "ms",
            bare=single_pass_ms,
            target=Target("<", 1000, "ms"),
            judged=judged,
        ),
        Figure(
            "state scale: share failover, worker killed to every share decided again",
            passed[SHARES - 1].arrived - killed,
            "s",
            bare=run.session_timeout,
        ),
    ]
