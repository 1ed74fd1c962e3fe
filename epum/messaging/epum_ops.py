"""The EPUM service's wire operations, adapted onto the ``EPUManagement`` facade.

Each method is one op of PROTOCOL.md section 5 with the argument names the
original clients send.  Domain ops take an optional ``caller``; without it
the configured ``default_user`` is used, with neither the request fails as
a ``BadRequestError`` before the facade is touched.  ``ou_heartbeat`` and
``instance_info`` pass the request's ``sender`` header (from the call
context) as the caller: for a heartbeat it is the agent's address.
"""

from __future__ import annotations

from typing import Any

from epum import logcontext
from epum.errors import BadRequestError
from epum.messaging.dispatch import Handler


class EPUMOperations:
    """Wire ops -> ``facade.msg_*``; ``table()`` is the dispatch table."""

    #: The op names served, in PROTOCOL.md order.
    OPS = (
        "subscribe_domain",
        "unsubscribe_domain",
        "add_domain",
        "remove_domain",
        "list_domains",
        "describe_domain",
        "reconfigure_domain",
        "add_domain_definition",
        "remove_domain_definition",
        "list_domain_definitions",
        "describe_domain_definition",
        "update_domain_definition",
        "ou_heartbeat",
        "instance_info",
    )

    def __init__(self, facade: Any, default_user: str | None = None):
        self.facade = facade
        self.default_user = default_user

    def table(self) -> dict[str, Handler]:
        """Op name -> bound handler, for ``Dispatcher``."""
        return {op: getattr(self, op) for op in self.OPS}

    def _owner(self, caller: str | None) -> str:
        owner = caller or self.default_user
        if not owner:
            raise BadRequestError(
                "this operation needs a caller (the domain owner) and the service "
                "has no default_user configured"
            )
        if not isinstance(owner, str):
            raise BadRequestError(f"caller must be a string, got {type(owner).__name__}")
        return owner

    @staticmethod
    def _sender() -> str | None:
        return logcontext.current().sender

    # domains -----------------------------------------------------------------
    def add_domain(
        self,
        domain_id: str,
        definition_id: str,
        config: dict[str, Any],
        subscriber_name: str | None = None,
        subscriber_op: str | None = None,
        caller: str | None = None,
    ) -> None:
        """Create a domain for the caller."""
        owner = self._owner(caller)
        with logcontext.log_context(caller=owner):
            return self.facade.msg_add_domain(
                owner, domain_id, definition_id, config, subscriber_name, subscriber_op
            )

    def remove_domain(self, domain_id: str, caller: str | None = None) -> None:
        """Remove one of the caller's domains."""
        owner = self._owner(caller)
        with logcontext.log_context(caller=owner):
            return self.facade.msg_remove_domain(owner, domain_id)

    def list_domains(self, caller: str | None = None) -> list[str]:
        """The caller's domain ids."""
        owner = self._owner(caller)
        with logcontext.log_context(caller=owner):
            return self.facade.msg_list_domains(owner)

    def describe_domain(self, domain_id: str, caller: str | None = None) -> Any:
        """One of the caller's domains, or None."""
        owner = self._owner(caller)
        with logcontext.log_context(caller=owner):
            return self.facade.msg_describe_domain(owner, domain_id)

    def reconfigure_domain(
        self, domain_id: str, config: dict[str, Any], caller: str | None = None
    ) -> None:
        """Merge new config into one of the caller's domains."""
        owner = self._owner(caller)
        with logcontext.log_context(caller=owner):
            return self.facade.msg_reconfigure_domain(owner, domain_id, config)

    def subscribe_domain(
        self,
        domain_id: str,
        subscriber_name: str,
        subscriber_op: str,
        caller: str | None = None,
    ) -> None:
        """Add a subscriber to one of the caller's domains."""
        owner = self._owner(caller)
        with logcontext.log_context(caller=owner):
            return self.facade.msg_subscribe_domain(
                owner, domain_id, subscriber_name, subscriber_op
            )

    def unsubscribe_domain(
        self, domain_id: str, subscriber_name: str, caller: str | None = None
    ) -> None:
        """Remove a subscriber from one of the caller's domains."""
        owner = self._owner(caller)
        with logcontext.log_context(caller=owner):
            return self.facade.msg_unsubscribe_domain(owner, domain_id, subscriber_name)

    # definitions ---------------------------------------------------------------
    def add_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Store a new definition."""
        return self.facade.msg_add_domain_definition(definition_id, definition)

    def update_domain_definition(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Replace a definition."""
        return self.facade.msg_update_domain_definition(definition_id, definition)

    def remove_domain_definition(self, definition_id: str) -> None:
        """Delete a definition."""
        return self.facade.msg_remove_domain_definition(definition_id)

    def list_domain_definitions(self) -> list[str]:
        """Every definition id."""
        return self.facade.msg_list_domain_definitions()

    def describe_domain_definition(self, definition_id: str) -> Any:
        """One definition, or None."""
        return self.facade.msg_describe_domain_definition(definition_id)

    # from agents and the provisioner ----------------------------------------------
    def ou_heartbeat(self, heartbeat: dict[str, Any]) -> None:
        """An instance agent's heartbeat; the sender is the agent's address."""
        return self.facade.msg_heartbeat(caller=self._sender(), content=heartbeat, timestamp=None)

    def instance_info(self, record: dict[str, Any]) -> None:
        """A provisioner's update of one instance record."""
        return self.facade.msg_instance_info(caller=self._sender(), content=record)
