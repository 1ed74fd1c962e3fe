"""Every benchmark in one run: one table of figures, and ``bench/results.json``.

``python -m bench.run`` (what ``scripts/bench`` runs) calls each benchmark
module's ``figures(...)`` in turn, with one private ZooKeeper server shared
by all of them and the broker at ``EPUM_TEST_AMQP_URL``; prints every figure
in one table and writes them all to ``--out`` (``bench/results.json`` by
default; the shape is ``bench.common.check_results``).  A benchmark that
fails is reported and the others still run; the exit code is then 1.
Targets not met do not fail the run: the figures are what they are.

Sizes: each module's ``figures`` parameters with a number default are
options ``--<benchmark>-<size>`` (``--worker-domains 200``); ``--tiny``
starts from each module's ``TINY`` sizes instead of the defaults (a smoke
run of seconds); ``--only NAME`` (repeatable) runs only those benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import decider_pass, heartbeats, reaction, rpc, state_scale, worker
from bench.common import Figure, figures_table, write_results, zookeeper

#: The benchmarks, in the order they run.
BENCHMARKS: dict[str, ModuleType] = {
    "decider_pass": decider_pass,
    "heartbeats": heartbeats,
    "rpc": rpc,
    "reaction": reaction,
    "worker": worker,
    "state_scale": state_scale,
}

RESULTS = Path(__file__).resolve().parent / "results.json"


def sizes_of(module: ModuleType) -> dict[str, int | float]:
    """The sizes a benchmark's ``figures`` takes (its positional-or-keyword parameters)
    and their defaults."""
    params = inspect.signature(module.figures).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD}


def option(benchmark: str, size: str) -> str:
    """The command line option of one size: ``--worker-domains``."""
    return f"--{benchmark}-{size}".replace("_", "-")


def run_benchmark(
    module: ModuleType, sizes: Mapping[str, int | float], shared: Mapping[str, Any]
) -> list[Figure]:
    """``module.figures(**sizes)``, handed those of the ``shared`` servers it takes."""
    return module.figures(**sizes, **{k: v for k, v in shared.items() if takes(module, k)})


def takes(module: ModuleType, argument: str) -> bool:
    """True if the benchmark's ``figures`` takes ``argument``."""
    return argument in inspect.signature(module.figures).parameters


def run(
    selected: list[str],
    sizes: Mapping[str, Mapping[str, int | float]],
    out: Path,
    server: Any = None,
    amqp_url: str | None = None,
    benchmarks: Mapping[str, ModuleType] = BENCHMARKS,
) -> tuple[list[Figure], list[str]]:
    """Run the ``selected`` ``benchmarks`` with their ``sizes``; write what they measured
    to ``out``.  Returns (figures, names of the benchmarks that failed).  ``server``: a
    running test kit ZooKeeper to use; else one private server is started for all the
    benchmarks that take one (none if none does)."""
    found: list[Figure] = []
    failed: list[str] = []
    needs_zookeeper = server is None and any(takes(benchmarks[n], "server") for n in selected)
    with zookeeper(server) if server or needs_zookeeper else contextlib.nullcontext() as zk:
        shared = {"server": zk, "amqp_url": amqp_url}
        for name in selected:
            began = time.monotonic()
            print(f"{name}: running ...", file=sys.stderr, flush=True)
            try:
                figures = run_benchmark(benchmarks[name], sizes[name], shared)
            except Exception:
                failed.append(name)
                print(f"{name}: FAILED\n{traceback.format_exc()}", file=sys.stderr, flush=True)
                continue
            found += figures
            took = time.monotonic() - began
            print(f"{name}: {len(figures)} figures in {took:.1f} s", file=sys.stderr, flush=True)
    write_results(out, found)
    return found, failed


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, dict[str, Any]]]:
    """The options, and the sizes per benchmark they come to."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), metavar="NAME")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file")
    parser.add_argument("--tiny", action="store_true", help="each benchmark's TINY sizes")
    for name, module in BENCHMARKS.items():
        group = parser.add_argument_group(name)
        for size, default in sizes_of(module).items():
            group.add_argument(
                option(name, size),
                dest=f"{name}.{size}",
                type=type(default),
                default=None,
                metavar="N",
                help=f"default {default}, tiny {module.TINY.get(size, default)}",
            )
    args = parser.parse_args(argv)
    sizes: dict[str, dict[str, Any]] = {}
    for name, module in BENCHMARKS.items():
        base = {**sizes_of(module), **(module.TINY if args.tiny else {})}
        given = {s: getattr(args, f"{name}.{s}") for s in base}
        sizes[name] = {s: given[s] if given[s] is not None else base[s] for s in base}
    return args, sizes


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the results; 1 if any benchmark failed."""
    args, sizes = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    selected = args.only or list(BENCHMARKS)
    began = time.monotonic()
    with contextlib.redirect_stdout(sys.stderr):  # the modules' own chatter, if any
        found, failed = run(selected, sizes, args.out)
    print(figures_table(found))
    print(f"\n{len(found)} figures written to {args.out} in {time.monotonic() - began:.0f} s")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
