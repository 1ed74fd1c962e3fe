"""Who a request is from: the broker-validated ``user_id`` (opt-in).

With ``server.amqp.trust_user_id`` on, a request's caller is its AMQP
``user_id`` property, which RabbitMQ checks against the user the sending
connection authenticated as (it refuses a message whose ``user_id`` is
anyone else); epum's own clients always set it.  Then, per operation (as
``epum.operations`` declares where its caller comes from):

- a domain op acts for that user: a ``caller`` argument naming anyone else
  is refused, unless the user is one of ``trusted_users`` (a service such as
  the process dispatcher, acting for its own callers), whose ``caller`` is
  taken as given;
- ``instance_info`` is taken only from ``provisioner_users`` and
  ``ou_heartbeat`` only from ``agent_users``;
- definition ops (no caller) are open to every authenticated user;
- a request with no ``user_id`` is refused.

Refusals are ``NotAuthorizedError`` (a ``BadRequestError`` on the wire),
raised before anything runs.  With ``trust_user_id`` off (the default, as
in the original services) requests pass unchanged: any client of the broker
can then name any caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from epum.errors import NotAuthorizedError
from epum.operations import CALLER_ARG, OPERATIONS, CallerFrom, Operation, by_name
from epum.settings import AmqpSettings

_OPERATIONS: dict[str, Operation] = by_name(OPERATIONS)

#: The reports and the setting naming the broker users each is taken from.
REPORTERS = {"instance_info": "provisioner_users", "ou_heartbeat": "agent_users"}


@dataclass(frozen=True)
class CallerPolicy:
    """The rules above; ``CallerPolicy()`` (trust off) lets every request through."""

    trust_user_id: bool = False
    trusted_users: frozenset[str] = field(default_factory=frozenset)
    provisioner_users: frozenset[str] = field(default_factory=frozenset)
    agent_users: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, amqp: AmqpSettings) -> CallerPolicy:
        """The policy ``server.amqp`` configures."""
        return cls(
            trust_user_id=amqp.trust_user_id,
            trusted_users=_names(amqp.trusted_users),
            provisioner_users=_names(amqp.provisioner_users),
            agent_users=_names(amqp.agent_users),
        )

    def admit(self, op: str, args: Mapping[str, Any], user_id: Any) -> dict[str, Any]:
        """The args to run ``op`` with, from broker user ``user_id``; NotAuthorizedError if not.

        With trust off, ``args`` unchanged.  An op that is not declared
        passes (the dispatcher refuses it as unknown).
        """
        if not self.trust_user_id:
            return dict(args)
        if not isinstance(user_id, str) or not user_id:
            raise NotAuthorizedError(
                f"{op}: the request carries no user_id property, and this service "
                "takes the caller only from the broker-validated user_id"
            )
        operation = _OPERATIONS.get(op)
        if operation is None:
            return dict(args)
        if operation.caller is CallerFrom.SENDER:
            setting = REPORTERS.get(op)
            allowed = getattr(self, setting) if setting else frozenset()
            if user_id not in allowed:
                raise NotAuthorizedError(
                    f"{op} is not taken from broker user {user_id!r} "
                    f"(server.amqp.{setting or 'trusted_users'})"
                )
            return dict(args)
        if operation.caller is CallerFrom.OWNER:
            given = args.get(CALLER_ARG)
            if user_id in self.trusted_users:
                return dict(args)
            if given is not None and given != user_id:
                raise NotAuthorizedError(
                    f"{op}: broker user {user_id!r} may not act for caller {given!r}"
                )
            return {**args, CALLER_ARG: user_id}
        return dict(args)


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values or ())
