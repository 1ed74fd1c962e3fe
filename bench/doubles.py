"""The services a benchmarked worker calls, as doubles on the broker: a provisioner and a DTRS.

Both are served by the messaging package's ``RpcServer`` in threads of the
benchmark's process (``served(...)``), under the benchmark's sysname, so the
worker talks to them exactly as it talks to the real services.

- ``ProvisionerDouble`` answers every ``provision`` at once, as a cloud that
  starts instances instantly would: it fires one ``instance_info`` RUNNING
  record per instance back to EPUM.  It notes when each request arrived
  (``wait_for``), which is how the benchmark sees the decider act.
  ``terminate_nodes`` is answered with TERMINATED records, ``dump_state``
  by resending the nodes' last records.
- The DTRS double is epum's own ``SimDTRS`` (every site known, credentials
  for everyone), its answers immediate.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from epum.messaging import Dispatcher, EPUManagementClient, Names, RpcClient, RpcServer
from epum.messaging.connection import make_connection
from epum.sim.stubs import SimDTRS
from epum.states import InstanceState


@dataclass(frozen=True)
class Provisioned:
    """One ``provision`` request as it arrived (``arrived`` is ``time.monotonic()``)."""

    arrived: float
    instance_id: str
    caller: str | None


class ProvisionerDouble:
    """A provisioner whose instances are RUNNING the moment they are asked for.

    Thread-safe: the RPC server's thread calls the ops while the benchmark
    waits in ``wait_for``.
    """

    def __init__(self, epum: EPUManagementClient):
        self.epum = epum
        self.requests: list[Provisioned] = []
        self._records: dict[str, dict[str, Any]] = {}
        self._counter = itertools.count(1)
        self._changed = threading.Condition()

    def table(self) -> dict[str, Any]:
        """Op name -> handler, for ``Dispatcher``."""
        return {
            "provision": self.provision,
            "terminate_nodes": self.terminate_nodes,
            "dump_state": self.dump_state,
        }

    def provision(
        self,
        launch_id: str,
        instance_ids: list[str],
        deployable_type: str | None = None,
        site: str | None = None,
        allocation: str | None = None,
        vars: dict[str, Any] | None = None,
        caller: str | None = None,
    ) -> None:
        """Note the request, then report each instance RUNNING (a fire)."""
        arrived = time.monotonic()
        with self._changed:
            for instance_id in instance_ids:
                self.requests.append(Provisioned(arrived, instance_id, caller))
            self._changed.notify_all()
        for instance_id in instance_ids:
            self._report(
                instance_id,
                InstanceState.RUNNING,
                launch_id=launch_id,
                site=site,
                allocation=allocation,
                deployable_type=deployable_type,
                public_ip="10.0.0.1",
            )

    def terminate_nodes(self, nodes: list[str], caller: str | None = None) -> None:
        """Report each node TERMINATED (a fire)."""
        for node_id in nodes:
            self._report(node_id, InstanceState.TERMINATED)

    def dump_state(self, nodes: list[str], force_subscribe: str | None = None) -> None:
        """Resend the last record of each known node (a fire)."""
        with self._changed:
            records = [self._records[n] for n in nodes if n in self._records]
        for record in records:
            self.epum.instance_info(record)

    def fail(self, node_id: str) -> float:
        """Report ``node_id`` FAILED, as a cloud that lost it would; returns
        ``time.monotonic()`` just before the report is sent."""
        started = time.monotonic()
        self._report(node_id, InstanceState.FAILED)
        return started

    def wait_for(self, count: int, timeout: float) -> Provisioned:
        """The ``count``-th request (1-based), once it has arrived; RuntimeError after
        ``timeout`` seconds without it."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise RuntimeError(
                    f"the worker asked for {len(self.requests)} instances, not {count}, "
                    f"within {timeout:g} s"
                )
            return self.requests[count - 1]

    def _report(self, node_id: str, state: str, **fields: Any) -> None:
        with self._changed:  # the RPC thread and the benchmark (``fail``) both report
            previous = self._records.get(node_id, {})
            record = {**previous, **fields, "node_id": node_id, "state": state}
            record["update_counter"] = next(self._counter)
            self._records[node_id] = record
        self.epum.instance_info(record)


@contextlib.contextmanager
def serving(server: RpcServer, timeout: float = 30.0) -> Iterator[None]:
    """Run ``server`` in a thread until the block ends (waits until it consumes)."""
    thread = threading.Thread(target=server.run, name=f"bench-{server.service}", daemon=True)
    thread.start()
    try:
        if not server.ready.wait(timeout):
            raise RuntimeError(f"the {server.service} double did not start consuming")
        yield
    finally:
        server.stop()
        thread.join(10)
        server.connection.release()


@contextlib.contextmanager
def served(url: str, names: Names, epum_service: str) -> Iterator[ProvisionerDouble]:
    """The provisioner and DTRS doubles on the broker; yields the provisioner."""
    rpc = RpcClient(make_connection(url, name=f"{names.sysname}-provisioner"), names, "provisioner")
    provisioner = ProvisionerDouble(EPUManagementClient(rpc, epum_service))
    dtrs = SimDTRS()
    servers = [
        RpcServer(
            make_connection(url, name=f"{names.sysname}-{service}"),
            names,
            service,
            Dispatcher(table),
            poll_interval=0.1,
        )
        for service, table in (
            ("provisioner", provisioner.table()),
            (
                "dtrs",
                {
                    "describe_site": dtrs.describe_site,
                    "describe_credentials": dtrs.describe_credentials,
                },
            ),
        )
    ]
    try:
        with serving(servers[0]), serving(servers[1]):
            yield provisioner
    finally:
        rpc.close()
