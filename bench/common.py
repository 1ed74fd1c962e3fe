"""What every benchmark shares: timing, figures, ratios and the local servers.

Benchmarks measure epum and the bare infrastructure under it in the same
run and print both with their ratio, so a figure means something on any
machine.  Servers are the test kit's: ``zookeeper()`` starts a private
ZooKeeper (``tests/zk_server.py``) on a free port and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated runs of one thing."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median run."""
        return statistics.median(self.samples)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile run (nearest rank)."""
        ordered = sorted(self.samples)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]

    @property
    def total(self) -> float:
        """Every run together."""
        return sum(self.samples)


def time_runs(fn: Callable[[], Any], runs: int, warmup: int = 1) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``runs`` times timed."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return Timing(tuple(samples))


def time_interleaved(
    fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 1
) -> dict[str, Timing]:
    """Like ``time_runs`` for several things at once, taking turns run by run.

    Taking turns spreads any change in the machine's load (other processes,
    the servers' own housekeeping) evenly over everything measured, so the
    ratios between them stay meaningful on a busy machine.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)
    return {name: Timing(tuple(values)) for name, values in samples.items()}


def ms(seconds: float) -> str:
    """Seconds as milliseconds, for a table."""
    return f"{seconds * 1000:9.3f} ms"


def ratio(value: float, bare: float) -> str:
    """``value / bare`` as ``12.3x`` (``n/a`` when the bare figure is zero)."""
    return f"{value / bare:7.2f}x" if bare > 0 else "    n/a"


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows as left-aligned columns, the first row a header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ZooKeeper -------------------------------------------------------------------


def zookeeper_store_available() -> bool:
    """True once ``epum.store.zookeeper`` exists in this tree."""
    try:
        import epum.store.zookeeper  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def zookeeper() -> Iterator[Any]:
    """A private ZooKeeper server for the benchmark (the test kit's), closed afterwards."""
    from tests.zk_server import ZooKeeperServer

    server = ZooKeeperServer(tick_time_ms=2000)
    try:
        server.start()
        yield server
    finally:
        server.close()


def unique_path(prefix: str) -> str:
    """A fresh znode path under ``/epum-bench`` for one measurement."""
    return f"/epum-bench/{prefix}-{uuid.uuid4().hex[:10]}"


def zxid(server: Any) -> int:
    """The server's last transaction id: it rises by one per write transaction."""
    from tests.zk_server import four_letter_word

    answer = four_letter_word(server.host, server.port, "srvr")
    match = re.search(r"Zxid: (0x[0-9a-fA-F]+)", answer)
    if match is None:
        raise RuntimeError(f"no Zxid in the srvr answer: {answer!r}")
    return int(match.group(1), 16) & 0xFFFFFFFF  # the low half counts; the high is the epoch


def kazoo_client(hosts: str) -> Any:
    """A started KazooClient (the bare infrastructure)."""
    from kazoo.client import KazooClient

    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=15)
    return client


def znodes_under(client: Any, root: str) -> list[str]:
    """Every znode path under ``root`` (``root`` excluded), depth first."""
    found = []
    stack = [root]
    while stack:
        path = stack.pop()
        for child in sorted(client.get_children(path)):
            child_path = f"{path}/{child}"
            found.append(child_path)
            stack.append(child_path)
    return found
