"""Every RPC operation of the EPUM service (PROTOCOL.md section 5), declared once.

An ``Operation`` names its wire name, its arguments (name, type, required or
not, the help text ``epumctl`` shows), its kind (a call expects a reply, a
fire does not), where its caller comes from, and the facade ``msg_*`` method
that serves it.  Everything else is derived from ``OPERATIONS``:

- the server's dispatch table (``epum.messaging.epum_ops``): arguments are
  bound to ``Operation.signature()`` and type-checked with
  ``Operation.check_args`` before the facade runs;
- the client (``epum.messaging.clients.EPUManagementClient``): one method per
  operation, with that same signature;
- ``epumctl``'s sub-commands (``epum.ctl_commands``, grouped by ``epum.ctl``).

Adding an operation is one ``Operation(...)`` here plus its ``msg_*`` method
on the facade (a test checks that the two agree).

Caller resolution is written once, in ``Operation.resolve_caller``: a domain
op (``CallerFrom.OWNER``) acts for the request's ``caller``, else the
configured ``default_user``, else it is refused with ``BadRequestError``; a
report (``CallerFrom.SENDER``) acts for the request's ``sender`` header.

The model (``Operation``, ``Arg``, ``CliSpec``, ``Kind``, ``CallerFrom``) is in
``epum.operation_spec`` and re-exported here.  This module imports no
transport: it is plain data.
"""

from __future__ import annotations

from epum.operation_spec import (
    CALLER_ARG,
    Arg,
    CallerFrom,
    CliSpec,
    Kind,
    Operation,
    by_name,
    declare,
    facade_disagreements,
)

__all__ = [
    "CALLER_ARG",
    "OPERATIONS",
    "Arg",
    "CallerFrom",
    "CliSpec",
    "Kind",
    "Operation",
    "by_name",
    "declare",
    "facade_disagreements",
]

# the declaration ------------------------------------------------------------------

_DOMAIN_ID = Arg("domain_id", str, "the domain's id", cli=CliSpec(metavar="ID"))
_DEFINITION_ID = Arg("definition_id", str, "the definition's id", cli=CliSpec(metavar="ID"))
_DEFINITION = Arg("definition", dict, "YAML file with the definition", cli=CliSpec(metavar="FILE"))
_SUBSCRIBER_NAME = Arg(
    "subscriber_name", str, "service told of instance changes", cli=CliSpec(metavar="NAME")
)
_SUBSCRIBER_OP = Arg("subscriber_op", str, "its operation", cli=CliSpec(metavar="OP"))

_CALL, _FIRE, _OWNER = Kind.CALL, Kind.FIRE, CallerFrom.OWNER

#: Every EPUM RPC operation, in PROTOCOL.md order.
OPERATIONS: tuple[Operation, ...] = declare(
    Operation(
        "subscribe_domain",
        "msg_subscribe_domain",
        _CALL,
        "Tell a service of this domain's instance changes.",
        (_DOMAIN_ID, _SUBSCRIBER_NAME, _SUBSCRIBER_OP),
        caller=_OWNER,
    ),
    Operation(
        "unsubscribe_domain",
        "msg_unsubscribe_domain",
        _CALL,
        "Stop telling a service of this domain's instance changes.",
        (_DOMAIN_ID, _SUBSCRIBER_NAME),
        caller=_OWNER,
    ),
    Operation(
        "add_domain",
        "msg_add_domain",
        _CALL,
        "Create a domain from a definition, with a config merged over it.",
        (
            _DOMAIN_ID,
            Arg(
                "definition_id",
                str,
                "definition id",
                cli=CliSpec(flag="--definition", metavar="DEF"),
            ),
            Arg(
                "config",
                dict,
                "YAML file with the domain config",
                cli=CliSpec(flag="--config", metavar="FILE", absent={}),
            ),
            Arg(
                "subscriber_name",
                str,
                "service told of instance changes",
                required=False,
                cli=CliSpec(flag="--subscriber", metavar="NAME"),
            ),
            Arg(
                "subscriber_op",
                str,
                "its operation",
                required=False,
                cli=CliSpec(metavar="OP"),
            ),
        ),
        caller=_OWNER,
    ),
    Operation(
        "remove_domain",
        "msg_remove_domain",
        _CALL,
        "Terminate a domain's instances and remove it.",
        (_DOMAIN_ID,),
        caller=_OWNER,
    ),
    Operation("list_domains", "msg_list_domains", _CALL, "The caller's domain ids.", caller=_OWNER),
    Operation(
        "describe_domain",
        "msg_describe_domain",
        _CALL,
        "A domain's config, sensor data and instances.",
        (_DOMAIN_ID,),
        caller=_OWNER,
        quick=True,
    ),
    Operation(
        "reconfigure_domain",
        "msg_reconfigure_domain",
        _CALL,
        "Merge config changes into a domain.",
        (
            _DOMAIN_ID,
            Arg("config", dict, "YAML file with the config changes", cli=CliSpec(metavar="FILE")),
        ),
        caller=_OWNER,
    ),
    Operation(
        "add_domain_definition",
        "msg_add_domain_definition",
        _CALL,
        "Store a new domain definition.",
        (_DEFINITION_ID, _DEFINITION),
        command="add-definition",
    ),
    Operation(
        "remove_domain_definition",
        "msg_remove_domain_definition",
        _CALL,
        "Delete a domain definition (domains made from it stay).",
        (_DEFINITION_ID,),
        command="remove-definition",
    ),
    Operation(
        "list_domain_definitions",
        "msg_list_domain_definitions",
        _CALL,
        "Every definition id.",
        command="list-definitions",
    ),
    Operation(
        "describe_domain_definition",
        "msg_describe_domain_definition",
        _CALL,
        "A definition and its engine's documentation.",
        (_DEFINITION_ID,),
        command="describe-definition",
    ),
    Operation(
        "update_domain_definition",
        "msg_update_domain_definition",
        _CALL,
        "Replace a domain definition (existing domains keep their copy).",
        (_DEFINITION_ID, _DEFINITION),
        command="update-definition",
    ),
    Operation(
        "describe_domain_history",
        "msg_describe_domain_history",
        _CALL,
        "Why a domain did (not) scale: its decision log, oldest first.",
        (
            _DOMAIN_ID,
            Arg("since", float, "entries at or after this time (epoch s)", required=False),
            Arg("limit", int, "at most this many (the latest)", required=False),
        ),
        caller=_OWNER,
    ),
    Operation(
        "ou_heartbeat",
        "msg_heartbeat",
        _FIRE,
        "An instance agent's heartbeat; the sender is the agent's address.",
        (Arg("heartbeat", dict, "the heartbeat", param="content"),),
        caller=CallerFrom.SENDER,
        on_command_line=False,
        ordered_by="node_id",
        quick=True,
    ),
    Operation(
        "instance_info",
        "msg_instance_info",
        _FIRE,
        "A provisioner's update of one instance record.",
        (Arg("record", dict, "the instance record", param="content"),),
        caller=CallerFrom.SENDER,
        on_command_line=False,
        ordered_by="node_id",
    ),
)
