"""The names the demo's story is told with, on the in-memory store
(``epum.sim.demo``) and on real servers (``epum.sim.demo_servers``) alike,
and ``StagedStory``, how the demos on real servers play their stages."""

from __future__ import annotations

import abc
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import TextIO

#: Whose domain it is.
OWNER = "demo-user"
#: The domain the demo keeps at size.
DOMAIN = "workers"
#: The definition the domain is made from.
DEFINITION = "sim-workers"


class StagedStory(abc.ABC):
    """A demo on real processes told in stages, each waited for up to ``stage_limit``.

    A subclass gives ``_start`` (the processes), ``_play`` (the stages, in
    order, stopping at the first that fails), ``_cleanup`` and ``say`` (one
    line of the story); ``on_poll`` runs at each look at a stage's condition.
    ``stages`` records each stage's outcome.
    """

    stage_limit = 60.0
    poll = 0.25

    def __init__(self) -> None:
        self.stages: dict[str, bool] = {}

    @abc.abstractmethod
    def say(self, text: str) -> None:
        """Tell one line of the story."""

    def on_poll(self) -> None:
        """Called at each look at a stage's condition (e.g. to redraw a screen)."""

    def stage(self, name: str, until: Callable[[], bool]) -> bool:
        """Wait until ``until()``; record and announce whether it got there.  A condition
        that raises (a process not serving yet, or coming back) is looked at again."""
        deadline = time.monotonic() + self.stage_limit
        done = False
        while time.monotonic() < deadline:
            try:
                done = bool(until())
            except Exception:
                done = False
            self.on_poll()
            if done:
                break
            time.sleep(self.poll)
        self.stages[name] = done
        self.say(f"{'ok' if done else '!! did not finish'}: {name}")
        return done

    def report(self, out: TextIO, history: list[str] | None) -> None:
        """Write each stage's outcome to ``out`` and, given, the decision log ``history``."""
        for name, done in self.stages.items():
            out.write(f"  [{'ok' if done else 'FAILED'}] {name}\n")
        if history is not None:
            out.write("\nWhy it did (not) scale (the decision log, before the removal):\n\n")
            for line in history:
                out.write("  " + line + "\n")

    def run(self) -> bool:
        """Start the processes, play every stage (stopping at the first that fails),
        clean up; True when every stage finished."""
        try:
            self._start()
            return self._play()
        finally:
            self._cleanup()

    @staticmethod
    def stop_processes(procs: Iterable[subprocess.Popen], grace: float = 15.0) -> None:
        """SIGTERM every process still running, then wait ``grace`` seconds for each
        before it is killed."""
        procs = list(procs)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    @abc.abstractmethod
    def _start(self) -> None:
        """Start the story's processes and clients."""

    @abc.abstractmethod
    def _play(self) -> bool:
        """Play the stages in order; False at the first that does not finish."""

    @abc.abstractmethod
    def _cleanup(self) -> None:
        """Stop what ``_start`` started and remove what the story left behind."""
