"""An engine for the fencing system test: it stops mid-decision at a gate.

``engine_conf``: ``gate_dir`` (a directory) and ``preserve_n``.  While the
domain has fewer live instances than ``preserve_n``, ``decide`` writes
``deciding-<pid>`` into ``gate_dir``, waits (up to ``GATE_WAIT`` seconds)
until a file ``open`` appears there, then launches one instance whose
launch vars carry ``by: <pid>``, so the test can tell which worker
launched what.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from epum.engines.base import Engine
from epum.states import InstanceState

#: Seconds a decision waits at the gate before giving up (a test's bound).
GATE_WAIT = 60.0


class GatedEngine(Engine):
    """Launches up to ``preserve_n`` instances, each only once the gate is open."""

    def initialize(self, control: Any, state: Any, conf: dict[str, Any]) -> None:
        """Take ``gate_dir`` and ``preserve_n`` from the conf."""
        self.gate = Path(conf["gate_dir"])
        self.preserve_n = int(conf.get("preserve_n", 1))

    def reconfigure(self, control: Any, newconf: dict[str, Any]) -> None:
        """Take a new ``preserve_n``."""
        self.preserve_n = int(newconf.get("preserve_n", self.preserve_n))

    def decide(self, control: Any, state: Any) -> None:
        """Launch one instance (after the gate opens) while fewer than ``preserve_n`` live."""
        live = [i for i in state.instances.values() if i.state < InstanceState.TERMINATING]
        if len(live) >= self.preserve_n:
            return
        pid = str(os.getpid())
        (self.gate / f"deciding-{pid}").write_text(pid)
        opened = threading.Event()
        waited = 0.0
        while not (self.gate / "open").exists():
            if waited >= GATE_WAIT or opened.wait(0.05):
                return
            waited += 0.05
        control.launch("dt", "site1", "small", count=1, extravars={"by": pid})
