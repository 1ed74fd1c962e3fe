"""SimProvisioner: a provisioner and its cloud, simulated in simulated time.

It speaks the provisioner client interface EPUM calls (PROTOCOL.md section
4) and answers the way a real provisioner does, with ``instance_info``
reports sent to ``sink.msg_instance_info(name, content)``.  Nothing happens
when a request arrives: requests are queued (from any thread) and acted on
at the next ``step(now)``, so EPUM is never called back from inside its own
call and the caller owns time.

Each accepted launch walks REQUESTED -> PENDING -> STARTED -> RUNNING, each
state entered ``Delays`` seconds after the one before; a termination walks
TERMINATING -> TERMINATED.  A launch fails (FAILED instead of STARTED) with
the probability configured for its site, drawn from a seeded generator, or
any live node is failed at the next step by ``fail(instance_id)``;
``fail_contextualization(instance_id)`` makes a node RUNNING_FAILED where it
would have been (or was) RUNNING, and ``vanish(instance_id)`` reports a live
node TERMINATED at once (its agent may go on: a zombie).  Every
report carries an ``update_counter`` that rises with each report, so EPUM can
drop stale or repeated ones.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from epum.states import InstanceState

log = logging.getLogger(__name__)

#: The launch path, in order; each state is entered after its delay.
LAUNCH_PATH = (
    InstanceState.REQUESTED,
    InstanceState.PENDING,
    InstanceState.STARTED,
    InstanceState.RUNNING,
)


class InstanceInfoSink(Protocol):
    """Where reports go: the facade, or an adapter that sends them over the wire."""

    def msg_instance_info(self, caller: str, content: dict[str, Any]) -> None:
        """Take one ``instance_info`` report from provisioner ``caller``."""


@dataclass(frozen=True)
class Delays:
    """Simulated seconds spent before entering each state (after the previous one).

    The defaults make a launch take 7 s and a termination 2 s: short enough
    for a demo, long enough that EPUM sees every intermediate state.
    """

    requested: float = 0.0
    pending: float = 1.0
    started: float = 4.0
    running: float = 2.0
    terminating: float = 0.0
    terminated: float = 2.0

    def launch(self) -> tuple[float, ...]:
        """The delays of ``LAUNCH_PATH``, in order."""
        return (self.requested, self.pending, self.started, self.running)


@dataclass(frozen=True)
class NodeView:
    """A node as the simulated cloud sees it (a snapshot)."""

    instance_id: str
    launch_id: str
    state: str
    site: str | None
    caller: str | None
    vars: dict[str, Any]
    public_ip: str | None
    state_time: float


@dataclass(frozen=True)
class Report:
    """One ``instance_info`` report the provisioner sent, with its simulated time."""

    time: float
    content: dict[str, Any]

    @property
    def instance_id(self) -> str:
        """The reported node."""
        return self.content["node_id"]

    @property
    def state(self) -> str:
        """The reported state."""
        return self.content["state"]


@dataclass
class _Node:
    instance_id: str
    launch_id: str
    index: int
    deployable_type: str | None
    site: str | None
    allocation: str | None
    vars: dict[str, Any]
    caller: str | None
    state: str = InstanceState.REQUESTING
    state_time: float = 0.0
    counter: int = 0
    errors: list[str] | None = None
    #: (due time, state) transitions still to come, in order.
    plan: list[tuple[float, str]] = field(default_factory=list)

    @property
    def ip(self) -> str:
        return f"10.{(self.index >> 16) & 255}.{(self.index >> 8) & 255}.{self.index & 255}"

    @property
    def has_address(self) -> bool:
        return InstanceState.STARTED <= self.state < InstanceState.TERMINATED

    def content(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "node_id": self.instance_id,
            "state": self.state,
            "update_counter": self.counter,
            "launch_id": self.launch_id,
            "site": self.site,
            "allocation": self.allocation,
            "deployable_type": self.deployable_type,
        }
        if self.has_address:
            record.update(
                iaas_id=f"i-{self.index:08x}",
                public_ip=self.ip,
                private_ip=self.ip,
                hostname=f"node-{self.index}.sim",
            )
        if self.errors:
            record["errors"] = list(self.errors)
        return record

    def view(self) -> NodeView:
        public_ip = self.ip if self.has_address else None
        return NodeView(
            self.instance_id,
            self.launch_id,
            self.state,
            self.site,
            self.caller,
            dict(self.vars),
            public_ip,
            self.state_time,
        )


class SimProvisioner:
    """A simulated provisioner: EPUM's provisioner client on one side, reports on the other.

    ``failure_rates`` maps a site to the chance (0..1) that a launch there
    fails; ``default_failure_rate`` covers other sites.  With the same
    ``seed`` and the same calls, the same launches fail.  Thread-safe:
    requests may come from any thread while another thread steps.
    """

    def __init__(
        self,
        sink: InstanceInfoSink | None = None,
        name: str = "provisioner",
        delays: Delays | None = None,
        failure_rates: Mapping[str, float] | None = None,
        default_failure_rate: float = 0.0,
        seed: int = 0,
    ):
        self.sink = sink
        self.name = name
        self.delays = delays or Delays()
        self.failure_rates = dict(failure_rates or {})
        self.default_failure_rate = default_failure_rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._nodes: dict[str, _Node] = {}
        self._inbox: list[tuple[str, Any]] = []
        self._counter = 0
        self.reports: list[Report] = []
        self.requests: list[dict[str, Any]] = []

    # the provisioner client interface -------------------------------------
    def provision(
        self,
        launch_id: str,
        instance_ids: list[str],
        deployable_type: str | None,
        site: str | None,
        allocation: str | None = None,
        vars: dict[str, Any] | None = None,
        caller: str | None = None,
    ) -> None:
        """Queue a launch; a node already known is the same request again (ignored)."""
        request = {
            "launch_id": launch_id,
            "instance_ids": list(instance_ids),
            "deployable_type": deployable_type,
            "site": site,
            "allocation": allocation,
            "vars": dict(vars or {}),
            "caller": caller,
        }
        with self._lock:
            self.requests.append(request)
            self._inbox.append(("provision", request))

    def terminate_nodes(self, nodes: list[str], caller: str | None = None) -> None:
        """Queue the termination of ``nodes``.

        Unknown nodes are reported TERMINATED; nodes already terminal are
        reported again; nodes already terminating are left to finish.
        """
        with self._lock:
            self._inbox.append(("terminate", list(nodes)))

    def dump_state(self, nodes: list[str], force_subscribe: str | None = None) -> None:
        """Queue a resend of the current record of each known node in ``nodes``."""
        with self._lock:
            self._inbox.append(("dump", list(nodes)))

    def describe_nodes(self, nodes: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The current records of ``nodes`` (every known node when None)."""
        with self._lock:
            ids = list(self._nodes) if nodes is None else [n for n in nodes if n in self._nodes]
            return [self._nodes[n].content() for n in ids]

    # the simulation's own controls ----------------------------------------
    def fail(self, instance_id: str, reason: str = "simulated failure") -> None:
        """Fail a live node at the next step: it is reported FAILED with ``reason``."""
        with self._lock:
            self._inbox.append(("fail", (instance_id, reason)))

    def fail_contextualization(self, instance_id: str) -> None:
        """At the next step the node's contextualization fails: RUNNING_FAILED instead of
        RUNNING (at once if it is RUNNING already)."""
        with self._lock:
            self._inbox.append(("ctx_fail", instance_id))

    def vanish(self, instance_id: str) -> None:
        """At the next step a live node is reported TERMINATED, without being asked."""
        with self._lock:
            self._inbox.append(("vanish", instance_id))

    def nodes(self, state: str | None = None) -> list[NodeView]:
        """Snapshots of the known nodes (only those in ``state`` when given)."""
        with self._lock:
            return [n.view() for n in self._nodes.values() if state is None or n.state == state]

    def pending_work(self) -> bool:
        """True while a request is queued or a node has a transition to come."""
        with self._lock:
            return bool(self._inbox) or any(n.plan for n in self._nodes.values())

    def step(self, now: float) -> list[Report]:
        """Act on queued requests, then make every transition due by ``now``.

        Reports go to the sink in the order they happen (after the lock is
        released) and are returned; a node due for several states in one
        step is reported in each, in order.
        """
        with self._lock:
            inbox, self._inbox = self._inbox, []
            out: list[_Node] = []
            for kind, payload in inbox:
                if kind == "provision":
                    self._accept(payload, now)
                elif kind == "terminate":
                    out.extend(self._terminate(payload, now))
                elif kind == "dump":
                    out.extend(self._nodes[n] for n in payload if n in self._nodes)
                elif kind == "ctx_fail":
                    out.extend(self._fail_contextualization(payload, now))
                elif kind == "vanish":
                    out.extend(self._vanish(payload, now))
                else:
                    out.extend(self._fail(*payload, now))
            contents = [n.content() for n in out]
            contents.extend(self._advance(now))
        reports = [Report(now, c) for c in contents]
        self.reports.extend(reports)
        if self.sink is not None:
            for content in contents:
                self.sink.msg_instance_info(self.name, content)
        return reports

    # internals (called with the lock held) ---------------------------------
    def _accept(self, request: dict[str, Any], now: float) -> None:
        for instance_id in request["instance_ids"]:
            if instance_id in self._nodes:
                continue
            node = _Node(
                instance_id=instance_id,
                launch_id=request["launch_id"],
                index=len(self._nodes) + 1,
                deployable_type=request["deployable_type"],
                site=request["site"],
                allocation=request["allocation"],
                vars=request["vars"],
                caller=request["caller"],
                state_time=now,
            )
            rate = self.failure_rates.get(node.site or "", self.default_failure_rate)
            fails = self._rng.random() < rate
            due = now
            for state, delay in zip(LAUNCH_PATH, self.delays.launch(), strict=True):
                due += delay
                if fails and state == InstanceState.STARTED:
                    node.plan.append((due, InstanceState.FAILED))
                    node.errors = ["simulated launch failure"]
                    break
                node.plan.append((due, state))
            self._nodes[instance_id] = node

    def _terminate(self, ids: list[str], now: float) -> list[_Node]:
        reported = []
        for instance_id in ids:
            node = self._nodes.get(instance_id)
            if node is None:
                node = _Node(instance_id, "", len(self._nodes) + 1, None, None, None, {}, None)
                self._nodes[instance_id] = node
                self._set(node, InstanceState.TERMINATED, now)
                reported.append(node)
                continue
            if node.state in InstanceState.TERMINAL:
                reported.append(node)  # tell again: the first report may have been lost
                continue
            if node.state >= InstanceState.TERMINATING or any(
                s >= InstanceState.TERMINATING for _, s in node.plan
            ):
                continue
            node.plan = [
                (now + self.delays.terminating, InstanceState.TERMINATING),
                (now + self.delays.terminating + self.delays.terminated, InstanceState.TERMINATED),
            ]
        return reported

    def _fail(self, instance_id: str, reason: str, now: float) -> list[_Node]:
        node = self._nodes.get(instance_id)
        if node is None or node.state >= InstanceState.TERMINATING:
            return []
        node.plan = []
        node.errors = [reason]
        self._set(node, InstanceState.FAILED, now)
        return [node]

    def _fail_contextualization(self, instance_id: str, now: float) -> list[_Node]:
        node = self._nodes.get(instance_id)
        if node is None or node.state >= InstanceState.TERMINATING:
            return []
        node.errors = ["simulated contextualization failure"]
        if node.state == InstanceState.RUNNING:
            self._set(node, InstanceState.RUNNING_FAILED, now)
            return [node]
        node.plan = [
            (due, InstanceState.RUNNING_FAILED if state == InstanceState.RUNNING else state)
            for due, state in node.plan
        ]
        return []

    def _vanish(self, instance_id: str, now: float) -> list[_Node]:
        node = self._nodes.get(instance_id)
        if node is None or node.state in InstanceState.TERMINAL:
            return []
        node.plan = []
        self._set(node, InstanceState.TERMINATED, now)
        return [node]

    def _advance(self, now: float) -> list[dict[str, Any]]:
        due: list[tuple[float, int, _Node, str]] = []
        for node in self._nodes.values():
            while node.plan and node.plan[0][0] <= now:
                when, state = node.plan.pop(0)
                due.append((when, node.index, node, state))
        contents = []
        for when, _, node, state in sorted(due, key=lambda d: (d[0], d[1])):
            self._set(node, state, when)
            contents.append(node.content())
        return contents

    def _set(self, node: _Node, state: str, when: float) -> None:
        self._counter += 1
        node.counter = self._counter
        node.state = state
        node.state_time = when
