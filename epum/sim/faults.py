"""The simulated provisioner service's fault RPC: break an instance on demand.

Ops (each a fire or a call; each takes the instance's ``node_id``):
``fail`` (the cloud fails it, with an optional ``reason``), ``silence``
(its agent stops heartbeating and answering), ``zombie`` (the cloud reports
it TERMINATED while its agent goes on heartbeating) and
``fail_contextualization`` (it ends RUNNING_FAILED instead of RUNNING).
The agents' faults need agents (the service's heartbeat interval set).
"""

from __future__ import annotations

from epum.errors import BadRequestError
from epum.messaging.dispatch import Handler
from epum.sim.agents import SimAgents
from epum.sim.cloud import SimProvisioner


class FaultOps:
    """The fault ops over one simulated cloud and its agents (None: no agents)."""

    def __init__(self, cloud: SimProvisioner, agents: SimAgents | None):
        self.cloud = cloud
        self.agents = agents

    def table(self) -> dict[str, Handler]:
        """Op name -> handler, for ``Dispatcher``."""
        return {
            "fail": self.fail,
            "silence": self.silence,
            "zombie": self.zombie,
            "fail_contextualization": self.fail_contextualization,
        }

    def fail(self, node_id: str, reason: str | None = None) -> None:
        """The cloud fails the node at its next step."""
        self.cloud.fail(_node(node_id), reason or "simulated failure")

    def silence(self, node_id: str) -> None:
        """The node's agent sends and answers nothing from now on."""
        self._agents("silence").go_silent(_node(node_id))

    def zombie(self, node_id: str) -> None:
        """The cloud reports the node TERMINATED; its agent goes on heartbeating."""
        agents = self._agents("zombie")
        self.cloud.vanish(_node(node_id))
        agents.zombie(node_id)

    def fail_contextualization(self, node_id: str) -> None:
        """The node ends RUNNING_FAILED where it would be RUNNING."""
        self.cloud.fail_contextualization(_node(node_id))

    def _agents(self, op: str) -> SimAgents:
        if self.agents is None:
            raise BadRequestError(f"{op} needs agents: start the service with a heartbeat interval")
        return self.agents


def _node(node_id: object) -> str:
    if not isinstance(node_id, str) or not node_id:
        raise BadRequestError(f"node_id must be a non-empty string, not {node_id!r}")
    return node_id


#: The fault ops, in the order ``epum fault`` lists them.
FAULTS = ("fail", "silence", "zombie", "fail_contextualization")


def main(argv: list[str] | None = None) -> int:
    """``epum fault OP NODE_ID``: strike a fault on a simulated instance over AMQP
    (a call to the simulated provisioner service); the exit code is 0 when it
    was accepted, 1 with the error's name and message otherwise."""
    import argparse
    import os
    import sys

    from epum.errors import EpumError
    from epum.messaging import RpcClient
    from epum.messaging.connection import make_connection
    from epum.messaging.names import Names

    parser = argparse.ArgumentParser(
        prog="epum fault", description="Break a simulated instance on demand."
    )
    parser.add_argument("op", choices=FAULTS)
    parser.add_argument("node_id", metavar="NODE_ID", help="the instance id")
    parser.add_argument("--reason", help="for fail: the reason the cloud gives")
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("EPUM_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
        help="broker URL (default: $EPUM_AMQP_URL)",
    )
    parser.add_argument(
        "--sysname", default=os.environ.get("EPUM_SYSNAME"), help="default: $EPUM_SYSNAME"
    )
    parser.add_argument("--service", default="provisioner", help="the simulator's service name")
    args = parser.parse_args(argv)
    extra = {"reason": args.reason} if args.op == "fail" and args.reason else {}
    try:
        rpc = RpcClient(make_connection(args.amqp_url), Names(args.sysname), "epum-fault")
    except ValueError as exc:
        print(f"epum fault: {exc}", file=sys.stderr)
        return 1
    try:
        rpc.call(args.service, args.op, timeout=10, node_id=args.node_id, **extra)
    except EpumError as exc:
        print(f"epum fault: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        rpc.close()
    print(f"{args.op} {args.node_id}: done")
    return 0
