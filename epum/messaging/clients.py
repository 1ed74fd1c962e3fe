"""Typed clients of the services epum talks to, and of epum itself.

Each wraps an ``Rpc`` (``RpcClient`` or a test double): calls wait for the
reply within the client's ``timeout`` and raise the remote error mapped by
the envelope's allow-list; fires return once the broker has the request.
Service names are bare (the sysname is added on the wire).
``EPUManagementClient``'s methods are not written out: ``with_operations``
generates one per operation of ``epum.operations`` (see the class).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from epum.operations import OPERATIONS, Kind, Operation


class Rpc(Protocol):
    """What the clients need of a transport."""

    def call(self, service: str, op: str, /, timeout: float | None = None, **args: Any) -> Any:
        """Run ``op`` remotely and return its result."""

    def fire(self, service: str, op: str, /, **args: Any) -> None:
        """Send ``op`` without waiting for a reply."""


def _given(**args: Any) -> dict[str, Any]:
    """``args`` without the ones left at None (so the remote default applies)."""
    return {k: v for k, v in args.items() if v is not None}


class _Client:
    def __init__(self, rpc: Rpc, service_name: str, timeout: float | None = None):
        self.rpc = rpc
        self.service_name = service_name
        self.timeout = timeout

    def _call(self, op: str, **args: Any) -> Any:
        return self.rpc.call(self.service_name, op, timeout=self.timeout, **args)

    def _fire(self, op: str, **args: Any) -> None:
        self.rpc.fire(self.service_name, op, **args)


def _operation_method(op: Operation) -> Callable[..., Any]:
    """The client method of ``op``: its signature, a call or a fire, optional args
    left at None not sent (so the service's default applies)."""
    signature = op.signature()
    optional = {p.name for p in signature.parameters.values() if p.default is None}
    send = "_call" if op.kind is Kind.CALL else "_fire"

    def method(self: _Client, /, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        given = {k: v for k, v in bound.arguments.items() if v is not None or k not in optional}
        return getattr(self, send)(op.name, **given)

    method.__name__ = op.name
    method.__doc__ = f"{op.kind.value.capitalize()}: {op.help}"
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *signature.parameters.values()],
        return_annotation=None if op.kind is Kind.FIRE else Any,
    )
    return method


def with_operations(operations: Iterable[Operation]) -> Callable[[type], type]:
    """A class decorator: one method per operation (see ``_operation_method``), and
    ``operations`` on the class."""
    ops = tuple(operations)

    def install(cls: type) -> type:
        for op in ops:
            method = _operation_method(op)
            method.__qualname__ = f"{cls.__qualname__}.{op.name}"
            setattr(cls, op.name, method)
        cls.operations = ops  # type: ignore[attr-defined]
        return cls

    return install


@with_operations(OPERATIONS)
class EPUManagementClient(_Client):
    """Every operation of the EPUM service (PROTOCOL.md section 5).

    The methods are generated from ``epum.operations.OPERATIONS``, one per
    operation, named after it and with its signature: the declared
    arguments in order (optional ones default to None and are then not
    sent), then, for domain operations, ``caller=None`` (the domain owner;
    when omitted the service uses its configured ``default_user``).  Calls
    return the reply's result; ``ou_heartbeat`` and ``instance_info`` are
    fires, as agents and the provisioner send them.  For example
    ``add_domain(domain_id, definition_id, config, subscriber_name=None,
    subscriber_op=None, caller=None)``; ``help(EPUManagementClient)`` lists
    them all.
    """

    operations: tuple[Operation, ...]

    def __init__(
        self, rpc: Rpc, service_name: str = "epu_management_service", timeout: float | None = None
    ):
        super().__init__(rpc, service_name, timeout)


class ProvisionerClient(_Client):
    """The provisioner operations epum uses (PROTOCOL.md section 4)."""

    def __init__(self, rpc: Rpc, service_name: str = "provisioner", timeout: float | None = None):
        super().__init__(rpc, service_name, timeout)

    def provision(
        self,
        launch_id: str,
        instance_ids: list[str],
        deployable_type: str,
        site: str,
        allocation: str | None = None,
        vars: dict[str, Any] | None = None,
        caller: str | None = None,
    ) -> None:
        """Fire: start the given instances."""
        self._fire(
            "provision",
            launch_id=launch_id,
            deployable_type=deployable_type,
            instance_ids=list(instance_ids),
            site=site,
            allocation=allocation,
            vars=vars or {},
            caller=caller,
        )

    def terminate_nodes(self, nodes: list[str], caller: str | None = None) -> None:
        """Fire: stop the given instances."""
        self._fire("terminate_nodes", nodes=list(nodes), caller=caller)

    def dump_state(self, nodes: list[str], force_subscribe: str | None = None) -> None:
        """Fire: ask the provisioner to resend the records of ``nodes``."""
        self._fire("dump_state", nodes=list(nodes), **_given(force_subscribe=force_subscribe))

    def describe_nodes(
        self, nodes: list[str] | None = None, caller: str | None = None
    ) -> list[dict[str, Any]]:
        """Call: the provisioner's records of ``nodes`` (all if None)."""
        return self._call("describe_nodes", nodes=nodes, caller=caller)


class DTRSClient(_Client):
    """The DTRS lookups epum uses."""

    def __init__(self, rpc: Rpc, service_name: str = "dtrs", timeout: float | None = None):
        super().__init__(rpc, service_name, timeout)

    def describe_site(self, site_name: str) -> dict[str, Any]:
        """Call: a site's description."""
        return self._call("describe_site", site_name=site_name)

    def describe_credentials(self, caller: str, site_name: str) -> dict[str, Any]:
        """Call: ``caller``'s credentials for a site."""
        return self._call("describe_credentials", caller=caller, site_name=site_name)


class OUAgentClient:
    """Instance agents, addressed by the name they heartbeat from."""

    def __init__(self, rpc: Rpc):
        self.rpc = rpc

    def dump_state(self, target_address: str, mock_timestamp: float | None = None) -> None:
        """Fire: ask the agent at ``target_address`` to heartbeat now."""
        self.rpc.fire(target_address, "dump_state", **_given(mock_timestamp=mock_timestamp))


class SubscriberNotifier:
    """Tells subscribers of instance state changes: an op fired at a named service."""

    def __init__(self, rpc: Rpc):
        self.rpc = rpc

    def notify_by_name(self, receiver_name: str, operation: str, message: dict[str, Any]) -> None:
        """Fire ``operation`` at ``receiver_name`` with ``message`` as its args."""
        if not isinstance(message, dict):
            raise TypeError(f"a notification is a dict of args, got {type(message).__name__}")
        self.rpc.fire(receiver_name, operation, **message)
