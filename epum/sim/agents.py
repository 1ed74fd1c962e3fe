"""SimAgents: the agents on simulated instances, heartbeating in simulated time.

Every RUNNING node of a ``SimProvisioner`` has an agent.  At each
``step(now)`` an agent whose heartbeat is due sends
``sink.msg_heartbeat(address, {"node_id", "state", ...}, timestamp=now)``,
where ``address`` (``agent_address(node_id)``) is the name EPUM asks for a
heartbeat through ``dump_state``.  Agents heartbeat when their node reaches
RUNNING and then every ``interval`` simulated seconds; a ``dump_state``
request makes the agent heartbeat at the next step.

An agent can be told to go silent (it sends nothing, answers nothing) or to
report a process error until it recovers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from epum.sim.cloud import SimProvisioner
from epum.states import InstanceHealthState, InstanceState

#: The name an agent sends from is this prefix and its node id.
AGENT_PREFIX = "agent-"


def agent_address(node_id: str) -> str:
    """The address the agent of ``node_id`` sends heartbeats from."""
    return AGENT_PREFIX + node_id


def node_of(address: str) -> str | None:
    """The node id behind an agent address, or None if it is not one."""
    return address[len(AGENT_PREFIX) :] if address.startswith(AGENT_PREFIX) else None


class HeartbeatSink(Protocol):
    """Where heartbeats go: the facade, or an adapter that sends them over the wire."""

    def msg_heartbeat(
        self, caller: str, content: dict[str, Any], timestamp: float | None = None
    ) -> None:
        """Take one heartbeat from agent ``caller``."""


@dataclass(frozen=True)
class Beat:
    """One heartbeat an agent sent, with its simulated time."""

    time: float
    address: str
    content: dict[str, Any]


class SimAgents:
    """The agents of every running node of one simulated cloud.

    Thread-safe: ``dump_state`` and the controls may be called from any
    thread while another thread steps.
    """

    def __init__(
        self,
        sink: HeartbeatSink | None,
        cloud: SimProvisioner,
        interval: float = 10.0,
    ):
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.sink = sink
        self.cloud = cloud
        self.interval = interval
        self._lock = threading.Lock()
        self._next_due: dict[str, float] = {}
        self._asked: set[str] = set()
        self._silent: set[str] = set()
        self._errors: dict[str, str] = {}
        self._zombies: set[str] = set()
        self.beats: list[Beat] = []

    # the agent client interface --------------------------------------------
    def dump_state(self, target_address: str, mock_timestamp: float | None = None) -> None:
        """Ask the agent at ``target_address`` to heartbeat at the next step."""
        node_id = node_of(target_address)
        if node_id is not None:
            with self._lock:
                self._asked.add(node_id)

    # the simulation's own controls ----------------------------------------
    def go_silent(self, node_id: str) -> None:
        """From now on the agent of ``node_id`` sends nothing and answers nothing."""
        with self._lock:
            self._silent.add(node_id)

    def resume(self, node_id: str) -> None:
        """The agent of ``node_id`` speaks again (it heartbeats at the next step)."""
        with self._lock:
            self._silent.discard(node_id)
            self._asked.add(node_id)

    def report_error(self, node_id: str, error: str = "worker process exited") -> None:
        """The agent of ``node_id`` reports PROCESS_ERROR (at once, then every interval)."""
        with self._lock:
            self._errors[node_id] = error
            self._asked.add(node_id)

    def zombie(self, node_id: str) -> None:
        """The agent of ``node_id`` goes on heartbeating whatever its node's state (pair
        with ``SimProvisioner.vanish`` for an instance the cloud lost but that lives)."""
        with self._lock:
            self._zombies.add(node_id)
            self._asked.add(node_id)

    def recover(self, node_id: str) -> None:
        """The agent of ``node_id`` reports OK again."""
        with self._lock:
            self._errors.pop(node_id, None)
            self._asked.add(node_id)

    def step(self, now: float) -> list[Beat]:
        """Send every heartbeat due by ``now``; return them in the order sent."""
        running = self.cloud.nodes(InstanceState.RUNNING)
        with self._lock:
            zombies = self._zombies - {n.instance_id for n in running}
        if zombies:  # the cloud's lock is never taken under ours
            running += [n for n in self.cloud.nodes() if n.instance_id in zombies]
        beats = []
        with self._lock:
            alive = {n.instance_id for n in running}
            for gone in set(self._next_due) - alive:
                del self._next_due[gone]
            for node in running:
                node_id = node.instance_id
                if node_id in self._silent:
                    continue
                due = self._next_due.get(node_id, now)
                if now < due and node_id not in self._asked:
                    continue
                self._next_due[node_id] = now + self.interval
                beats.append(Beat(now, agent_address(node_id), self._content(node_id, now)))
            self._asked.clear()
        self.beats.extend(beats)
        if self.sink is not None:
            for beat in beats:
                self.sink.msg_heartbeat(beat.address, beat.content, timestamp=now)
        return beats

    def _content(self, node_id: str, now: float) -> dict[str, Any]:
        error = self._errors.get(node_id)
        if error is None:
            return {"node_id": node_id, "state": InstanceHealthState.OK}
        return {
            "node_id": node_id,
            "state": InstanceHealthState.PROCESS_ERROR,
            "error": error,
            "error_time": now,
            "failed_processes": [{"name": "worker", "state": "FAILED", "error": error}],
        }
