"""The simulation on the wire: its ops for an RPC server, and sinks that send to EPUM.

``ProvisionerOps`` is the dispatch table of a simulated provisioner service
(ops ``provision``, ``terminate_nodes``, ``dump_state``, ``describe_nodes``
with the argument names EPUM's ``ProvisionerClient`` sends).
``InstanceInfoOverWire`` and ``HeartbeatsOverWire`` are the sinks a
``SimProvisioner`` and ``SimAgents`` report to when EPUM is a service: they
fire ``instance_info`` (arg ``record``) and ``ou_heartbeat`` (arg
``heartbeat``) through the messaging package's clients.  Each agent sends
from its own address (the ``sender`` header), as real agents do, so each
gets a client of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from epum.messaging.clients import EPUManagementClient
from epum.messaging.dispatch import Handler
from epum.sim.cloud import SimProvisioner

log = logging.getLogger(__name__)


class ProvisionerOps:
    """A ``SimProvisioner``'s operations, as the wire names and passes them."""

    def __init__(self, cloud: SimProvisioner):
        self.cloud = cloud

    def table(self) -> dict[str, Handler]:
        """Op name -> handler, for ``Dispatcher``."""
        return {
            "provision": self.provision,
            "terminate_nodes": self.terminate_nodes,
            "dump_state": self.dump_state,
            "describe_nodes": self.describe_nodes,
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
        """Queue a launch (a fire)."""
        self.cloud.provision(
            launch_id, instance_ids, deployable_type, site, allocation, vars, caller
        )

    def terminate_nodes(self, nodes: list[str], caller: str | None = None) -> None:
        """Queue terminations (a fire)."""
        self.cloud.terminate_nodes(nodes, caller=caller)

    def dump_state(self, nodes: list[str], force_subscribe: str | None = None) -> None:
        """Queue a resend of the nodes' records (a fire)."""
        self.cloud.dump_state(nodes, force_subscribe=force_subscribe)

    def describe_nodes(
        self, nodes: list[str] | None = None, caller: str | None = None
    ) -> list[dict[str, Any]]:
        """The current records of ``nodes`` (all when None) (a call)."""
        return self.cloud.describe_nodes(nodes)


class InstanceInfoOverWire:
    """A ``SimProvisioner`` sink that fires each report to EPUM as ``instance_info``."""

    def __init__(self, epum: EPUManagementClient):
        self.epum = epum

    def msg_instance_info(self, caller: str, content: dict[str, Any]) -> None:
        """Fire one record to EPUM (the client's sender names the provisioner)."""
        self.epum.instance_info(content)


class HeartbeatsOverWire:
    """A ``SimAgents`` sink that fires each heartbeat to EPUM from the agent's own address.

    ``client_for(address)`` builds the EPUM client an agent sends through;
    clients are made on first use and kept until ``close()``.
    """

    def __init__(self, client_for: Callable[[str], EPUManagementClient]):
        self._client_for = client_for
        self._clients: dict[str, EPUManagementClient] = {}
        self._lock = threading.Lock()

    def msg_heartbeat(
        self, caller: str, content: dict[str, Any], timestamp: float | None = None
    ) -> None:
        """Fire one heartbeat as ``ou_heartbeat`` (EPUM stamps it with its own clock)."""
        with self._lock:
            client = self._clients.get(caller)
            if client is None:
                client = self._clients[caller] = self._client_for(caller)
        client.ou_heartbeat(content)

    def forget(self, keep: set[str]) -> None:
        """Close the clients of agents not in ``keep`` (their nodes are gone)."""
        with self._lock:
            gone = [a for a in self._clients if a not in keep]
            clients = [self._clients.pop(a) for a in gone]
        for client in clients:
            _close(client)

    def close(self) -> None:
        """Close every agent's client."""
        self.forget(set())


def _close(client: EPUManagementClient) -> None:
    close = getattr(client.rpc, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.debug("closing an agent's client failed", exc_info=True)
