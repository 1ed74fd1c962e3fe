"""What every benchmark shares: timing, figures, ratios and the local servers.

Benchmarks measure epum and the bare infrastructure under it in the same
run and print both with their ratio, so a figure means something on any
machine.  Each benchmark module's ``figures(...)`` returns what it measured
as ``Figure`` objects, the one shape of a result (``bench/results.json``
holds one per figure; ``check_results`` is its schema).  Servers are the
test kit's: ``zookeeper()`` starts a private ZooKeeper
(``tests/zk_server.py``) on a free port and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import re
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
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


# Figures -------------------------------------------------------------------

#: The comparisons a target may make, by the symbol it is written with.
TARGET_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}

#: The keys of one figure in ``bench/results.json``, in order.
FIGURE_KEYS = ("name", "value", "unit", "bare", "ratio", "target", "met")

_TARGET_TEXT = re.compile(r"^(<=|>=|<|>|=) (-?[0-9.]+(?:e-?[0-9]+)?)(?: (\S.*))?$")


class ResultsError(ValueError):
    """A figure or a results file that does not have the declared shape (names what is wrong)."""


@dataclass(frozen=True)
class Target:
    """What a figure should reach: ``op limit`` of its ratio, or, with a ``unit``, of its value.

    Written as text the way ``results.json`` holds it: ``">= 0.5"`` is a goal
    for the ratio, ``"< 10 ms"`` one for the value (the unit says which).
    """

    op: str
    limit: float
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.op not in TARGET_OPS:
            raise ResultsError(
                f"target operator {self.op!r}; expected one of {', '.join(TARGET_OPS)}"
            )
        if not isinstance(self.limit, int | float) or not math.isfinite(self.limit):
            raise ResultsError(f"target limit must be a finite number, not {self.limit!r}")

    def __str__(self) -> str:
        text = f"{self.op} {self.limit:g}"
        return f"{text} {self.unit}" if self.unit else text

    @classmethod
    def parse(cls, text: str) -> Target:
        """The target written as ``text`` (``"<= 1.5"``, ``"< 10 ms"``); ResultsError if not one."""
        match = _TARGET_TEXT.match(text) if isinstance(text, str) else None
        if match is None:
            raise ResultsError(f"target {text!r} is not '<op> <number> [unit]'")
        return cls(match.group(1), float(match.group(2)), match.group(3))

    def met(self, value: float, ratio: float | None) -> bool | None:
        """Whether the figure reaches the target (None when it has no ratio to judge)."""
        measured = value if self.unit else ratio
        if measured is None:
            return None
        return TARGET_OPS[self.op](measured, self.limit)


@dataclass(frozen=True)
class Figure:
    """One measured figure, next to the bare figure from the same run when there is one.

    ``ratio`` is always ``value / bare``.  ``met`` judges the ``target``;
    it is None without a target, and when ``judged`` is False (the run was
    smaller than the size the target is stated for).
    """

    name: str
    value: float
    unit: str
    bare: float | None = None
    target: Target | None = None
    judged: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ResultsError(f"a figure needs a name, not {self.name!r}")
        for key in ("value", "bare"):
            number = getattr(self, key)
            if number is None and key == "bare":
                continue
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ResultsError(f"figure {self.name!r}: {key} must be a number, not {number!r}")
            if not math.isfinite(number):
                raise ResultsError(f"figure {self.name!r}: {key} must be finite, not {number!r}")
        if self.target is not None and self.target.unit not in (None, self.unit):
            raise ResultsError(
                f"figure {self.name!r}: target {self.target} is in {self.target.unit}, "
                f"the figure in {self.unit}"
            )

    @property
    def ratio(self) -> float | None:
        """``value / bare``; None without a bare figure (or with a bare figure of 0)."""
        return self.value / self.bare if self.bare else None

    @property
    def met(self) -> bool | None:
        """True/False against the target; None when there is none or it is not judged."""
        if self.target is None or not self.judged:
            return None
        return self.target.met(self.value, self.ratio)

    def to_dict(self) -> dict[str, Any]:
        """The figure as ``results.json`` holds it (numbers to 4 significant digits)."""
        return {
            "name": self.name,
            "value": _round(self.value),
            "unit": self.unit,
            "bare": _round(self.bare),
            "ratio": _round(self.ratio),
            "target": None if self.target is None else str(self.target),
            "met": self.met,
        }


def _round(number: float | None) -> float | None:
    return None if number is None else float(f"{number:.4g}")


def check_results(data: Any) -> list[dict[str, Any]]:
    """``data`` (a decoded ``results.json``) if it has the declared shape, else ResultsError.

    The shape: a list of objects with exactly ``FIGURE_KEYS``; ``name`` a
    unique non-empty string, ``value`` a number, ``unit`` a string, ``bare``
    a number or null, ``ratio`` null exactly when there is no (non-zero)
    bare figure, ``target`` null or a target's text, ``met`` a bool or null
    (null when there is no target).
    """
    if not isinstance(data, list):
        raise ResultsError(f"results must be a list of figures, not {type(data).__name__}")
    seen: set[str] = set()
    for i, item in enumerate(data):
        where = f"figure {i}"
        if not isinstance(item, dict):
            raise ResultsError(f"{where} must be an object, not {type(item).__name__}")
        if set(item) != set(FIGURE_KEYS):
            raise ResultsError(f"{where} has keys {sorted(item)}; expected {list(FIGURE_KEYS)}")
        name = item["name"]
        if not isinstance(name, str) or not name:
            raise ResultsError(f"{where}: name must be a non-empty string, not {name!r}")
        where = f"figure {i} ({name})"
        if name in seen:
            raise ResultsError(f"{where}: the name is used twice")
        seen.add(name)
        if not isinstance(item["unit"], str):
            raise ResultsError(f"{where}: unit must be a string, not {item['unit']!r}")
        for key, nullable in (("value", False), ("bare", True), ("ratio", True)):
            number = item[key]
            if number is None and nullable:
                continue
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ResultsError(f"{where}: {key} must be a number, not {number!r}")
        if (item["ratio"] is None) != (not item["bare"]):
            raise ResultsError(f"{where}: ratio must be given exactly when bare is (non-zero)")
        if item["target"] is not None:
            target = Target.parse(item["target"])
            if target.unit not in (None, item["unit"]):
                raise ResultsError(f"{where}: target {item['target']!r} is not in {item['unit']}")
        if item["met"] not in (True, False, None):
            raise ResultsError(f"{where}: met must be true, false or null, not {item['met']!r}")
        if item["target"] is None and item["met"] is not None:
            raise ResultsError(f"{where}: met must be null without a target")
    return data


def write_results(path: Path | str, figures: Iterable[Figure]) -> list[dict[str, Any]]:
    """Write ``figures`` to ``path`` as a results file; returns what was written."""
    data = check_results([f.to_dict() for f in figures])
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
    return data


def number(value: float | None) -> str:
    """A figure's number for a table: about 3 significant digits, thousands separated."""
    if value is None:
        return ""
    size = abs(value)
    if size >= 100 or value == int(value):
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def figures_table(figures: Iterable[Figure | dict[str, Any]]) -> str:
    """Figures (objects or their dicts) as one table: value and bare with units, ratio,
    target, and whether it is met."""
    rows = [("figure", "value", "bare", "ratio", "target", "met")]
    for f in figures:
        d = f.to_dict() if isinstance(f, Figure) else f
        met = {True: "yes", False: "no", None: ""}[d["met"]]
        bare = f"{number(d['bare'])} {d['unit']}" if d["bare"] is not None else ""
        rows.append(
            (
                d["name"],
                f"{number(d['value'])} {d['unit']}",
                bare,
                f"{number(d['ratio'])}x" if d["ratio"] is not None else "",
                d["target"] or "",
                met,
            )
        )
    return table(rows)


# RabbitMQ --------------------------------------------------------------------


def ensure_rabbit_plugin(name: str) -> None:
    """Enable the RabbitMQ plugin ``name`` on the local broker if it is off
    (``rabbitmq-plugins enable`` restarts nothing and returns once the plugin runs);
    RuntimeError saying why when it cannot."""
    if not shutil.which("rabbitmq-plugins"):
        raise RuntimeError(f"the RabbitMQ plugin {name} is needed; rabbitmq-plugins is missing")
    enabled = subprocess.run(["rabbitmq-plugins", "is_enabled", name], capture_output=True)
    if enabled.returncode == 0:
        return
    done = subprocess.run(["rabbitmq-plugins", "enable", name], capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmq-plugins enable {name} failed: {done.stderr.decode()[-500:]}")


# ZooKeeper -------------------------------------------------------------------


def zookeeper_store_available() -> bool:
    """True once ``epum.store.zookeeper`` exists in this tree."""
    try:
        import epum.store.zookeeper  # noqa: F401
    except ImportError:
        return False
    return True


#: The benchmarks' ZooKeeper heap: ``bench.state_scale``'s 100,000 records and two
#: workers' watches on them need more than the test kit's default.
ZOOKEEPER_HEAP_MB = 1536


@contextlib.contextmanager
def zookeeper(running: Any = None) -> Iterator[Any]:
    """A private ZooKeeper server for the benchmark (the test kit's), closed afterwards;
    or ``running``, a test kit server already started, left running."""
    if running is not None:
        yield running
        return
    from tests.zk_server import ZooKeeperServer

    server = ZooKeeperServer(tick_time_ms=2000, heap_mb=ZOOKEEPER_HEAP_MB)
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


def unbounded_launches(instances: int) -> dict[str, dict[str, float]]:
    """The ``initial_conf`` part that lets one decider pass launch all ``instances``
    at once (the launch limits would spread a benchmark's seeding over many passes)."""
    return {
        "limits": {
            "max_launches_per_second": instances + 1,
            "max_launches_per_pass": instances + 1,
        }
    }


def broker_url(amqp_url: str | None) -> str:
    """``amqp_url``, else ``EPUM_TEST_AMQP_URL``, once a broker answers there (the local one
    is started if none does; the test kit's ``ensure_broker``)."""
    from tests.rabbit import AMQP_URL, ensure_broker

    url = amqp_url or AMQP_URL
    ensure_broker(url)
    return url
