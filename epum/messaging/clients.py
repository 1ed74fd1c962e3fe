"""Typed clients of the services epum talks to, and of epum itself.

Each wraps an ``Rpc`` (``RpcClient`` or a test double): calls wait for the
reply within the client's ``timeout`` and raise the remote error mapped by
the envelope's allow-list; fires return once the broker has the request.
Service names are bare (the sysname is added on the wire).
"""

from __future__ import annotations

from typing import Any, Protocol


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


class EPUManagementClient(_Client):
    """Every operation of the EPUM service (PROTOCOL.md section 5).

    Domain operations take an optional ``caller`` (the domain owner); when
    omitted the service uses its configured ``default_user``.
    ``ou_heartbeat`` and ``instance_info`` are fires, as agents and the
    provisioner send them.
    """

    def __init__(
        self, rpc: Rpc, service_name: str = "epu_management_service", timeout: float | None = None
    ):
        super().__init__(rpc, service_name, timeout)

    # definitions
    def add_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Store a new definition; ``WriteConflictError`` if the id exists."""
        return self._call(
            "add_domain_definition", definition_id=definition_id, definition=definition
        )

    def update_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Replace a definition (existing domains keep their copy)."""
        return self._call(
            "update_domain_definition", definition_id=definition_id, definition=definition
        )

    def remove_domain_definition(self, definition_id: str) -> None:
        """Delete a definition."""
        return self._call("remove_domain_definition", definition_id=definition_id)

    def describe_domain_definition(self, definition_id: str) -> dict[str, Any] | None:
        """``{name, definition, documentation?}`` of a definition."""
        return self._call("describe_domain_definition", definition_id=definition_id)

    def list_domain_definitions(self) -> list[str]:
        """Every definition id."""
        return self._call("list_domain_definitions")

    # domains
    def add_domain(
        self,
        domain_id: str,
        definition_id: str,
        config: dict[str, Any],
        subscriber_name: str | None = None,
        subscriber_op: str | None = None,
        caller: str | None = None,
    ) -> None:
        """Create a domain from a definition with ``config`` merged over it."""
        return self._call(
            "add_domain",
            domain_id=domain_id,
            definition_id=definition_id,
            config=config,
            **_given(subscriber_name=subscriber_name, subscriber_op=subscriber_op, caller=caller),
        )

    def remove_domain(self, domain_id: str, caller: str | None = None) -> None:
        """Terminate a domain's instances and remove it."""
        return self._call("remove_domain", domain_id=domain_id, **_given(caller=caller))

    def list_domains(self, caller: str | None = None) -> list[str]:
        """The caller's domain ids."""
        return self._call("list_domains", **_given(caller=caller))

    def describe_domain(self, domain_id: str, caller: str | None = None) -> dict[str, Any] | None:
        """``{name, config, sensor_data, instances}`` of a domain."""
        return self._call("describe_domain", domain_id=domain_id, **_given(caller=caller))

    def reconfigure_domain(
        self, domain_id: str, config: dict[str, Any], caller: str | None = None
    ) -> None:
        """Merge ``config`` over the domain's config."""
        return self._call(
            "reconfigure_domain", domain_id=domain_id, config=config, **_given(caller=caller)
        )

    def subscribe_domain(
        self, domain_id: str, subscriber_name: str, subscriber_op: str, caller: str | None = None
    ) -> None:
        """Have ``subscriber_name.subscriber_op`` told of instance state changes."""
        return self._call(
            "subscribe_domain",
            domain_id=domain_id,
            subscriber_name=subscriber_name,
            subscriber_op=subscriber_op,
            **_given(caller=caller),
        )

    def unsubscribe_domain(
        self, domain_id: str, subscriber_name: str, caller: str | None = None
    ) -> None:
        """Stop notifying ``subscriber_name``."""
        return self._call(
            "unsubscribe_domain",
            domain_id=domain_id,
            subscriber_name=subscriber_name,
            **_given(caller=caller),
        )

    # messages from agents and the provisioner
    def ou_heartbeat(self, heartbeat: dict[str, Any]) -> None:
        """Fire an instance agent's heartbeat."""
        self._fire("ou_heartbeat", heartbeat=heartbeat)

    def instance_info(self, record: dict[str, Any]) -> None:
        """Fire a provisioner's instance record update."""
        self._fire("instance_info", record=record)


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
