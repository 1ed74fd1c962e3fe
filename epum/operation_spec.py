"""What an EPUM operation is: ``Operation``, its ``Arg``s, and checks over them.

The operations themselves are declared in ``epum.operations``; this module
holds the model every derivation reads (the dispatch table, the client,
``epumctl``), the one caller resolution (``Operation.resolve_caller``), the
argument type checks, and ``facade_disagreements``, which tells whether a
facade serves a declaration.  Plain data and pure functions: no transport.
"""

from __future__ import annotations

import enum
import inspect
import keyword
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from epum.errors import BadRequestError


class Kind(enum.Enum):
    """How an operation travels: a call waits for a reply, a fire does not."""

    CALL = "call"
    FIRE = "fire"


class CallerFrom(enum.Enum):
    """Where the facade's ``caller`` argument comes from."""

    #: The op concerns no owner (definitions): the facade gets no caller.
    NONE = "none"
    #: A domain op: the request's optional ``caller`` arg, else ``default_user``.
    OWNER = "owner"
    #: A report from an agent or the provisioner: the request's ``sender`` header.
    SENDER = "sender"


#: The argument types an operation may declare, and how an error names them.
TYPE_NAMES: dict[type, str] = {
    str: "a string",
    dict: "a mapping",
    list: "a list",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}

#: The optional wire argument every domain op takes (the domain owner).
CALLER_ARG = "caller"

#: The order key of every request that names no instance to be ordered by:
#: such a request is handled alone, after every request that arrived before
#: it and before every one that arrived after it.
SERIAL = "serial"


@dataclass(frozen=True)
class CliSpec:
    """How ``epumctl`` takes one argument; what is left at None is derived.

    ``flag``: the option (``"--definition"``); None means a positional for a
    required argument and ``--<name-with-dashes>`` for an optional one.
    ``metavar``: the placeholder in the usage text (default: the name in
    capitals).  ``from_file``: the value is a YAML mapping read from the
    named file (default: for ``dict`` arguments).  ``absent``: the value
    sent when an optional flag is not given; it makes a flag optional on
    the command line even when the wire argument is required.
    """

    flag: str | None = None
    metavar: str | None = None
    from_file: bool | None = None
    absent: Any = None


@dataclass(frozen=True)
class Arg:
    """One wire argument of an operation.

    ``param`` is the facade parameter it is passed as, when its name there
    differs (``ou_heartbeat``'s ``heartbeat`` is ``msg_heartbeat``'s
    ``content``).  An optional argument may be absent or null.
    """

    name: str
    type: type
    help: str
    required: bool = True
    param: str | None = None
    cli: CliSpec = field(default_factory=CliSpec)

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or keyword.iskeyword(self.name):
            raise ValueError(f"argument name {self.name!r} is not an identifier")
        if self.type not in TYPE_NAMES:
            raise ValueError(
                f"argument {self.name}: type {self.type!r} is not one of "
                f"{', '.join(t.__name__ for t in TYPE_NAMES)}"
            )

    @property
    def facade_param(self) -> str:
        """The name of the facade parameter this argument is passed as."""
        return self.param or self.name

    def check(self, op: str, value: Any) -> None:
        """Raise ``BadRequestError`` naming ``op`` and this argument if ``value`` is
        not of the declared type (null is fine for an optional argument)."""
        if value is None and not self.required:
            return
        if not is_of_type(value, self.type):
            raise BadRequestError(
                f"{op}: {self.name} must be {TYPE_NAMES[self.type]}, not {type(value).__name__}"
            )


def is_of_type(value: Any, kind: type) -> bool:
    """True if the JSON value ``value`` is a ``kind`` (``bool`` is not a number)."""
    if kind in (int, float) and isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


@dataclass(frozen=True)
class Operation:
    """One RPC operation of the EPUM service.

    ``name``: the wire name.  ``method``: the facade method that serves it,
    called with the caller first (unless ``caller`` is ``CallerFrom.NONE``),
    then every argument in declared order.  ``args``: required ones first.
    ``command``: the ``epumctl`` sub-command (default: the name with
    dashes); ``on_command_line=False`` leaves the op off the command line.
    ``ordered_by``: for a report, the field of its one mapping argument that
    names the instance it concerns (see ``order_key``).  ``quick``: served
    from the worker's cache in the steady state, with no store round trip,
    so the RPC server runs it on its consumer's thread when nothing it must
    wait for is in hand (handing it to another thread would cost more).
    """

    name: str
    method: str
    kind: Kind
    help: str
    args: tuple[Arg, ...] = ()
    caller: CallerFrom = CallerFrom.NONE
    command: str | None = None
    on_command_line: bool = True
    ordered_by: str | None = None
    quick: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"operation name {self.name!r} is not an identifier")
        if not self.method.startswith("msg_"):
            raise ValueError(f"operation {self.name}: method {self.method!r} is not a msg_* method")
        names = [a.name for a in self.args]
        if len(set(names)) != len(names):
            raise ValueError(f"operation {self.name}: an argument is declared twice")
        if CALLER_ARG in names:
            raise ValueError(
                f"operation {self.name}: {CALLER_ARG!r} is not declared, it is derived"
            )
        seen_optional = False
        for arg in self.args:
            if arg.required and seen_optional:
                raise ValueError(
                    f"operation {self.name}: required argument {arg.name} after an optional one"
                )
            seen_optional = seen_optional or not arg.required

    @property
    def is_domain_op(self) -> bool:
        """True for ops that act for a domain owner (resolved from the request)."""
        return self.caller is CallerFrom.OWNER

    @property
    def command_name(self) -> str:
        """The ``epumctl`` sub-command."""
        return self.command or self.name.replace("_", "-")

    def wire_args(self) -> tuple[str, ...]:
        """The argument names a request may carry (``caller`` last, for domain ops)."""
        names = tuple(a.name for a in self.args)
        return (*names, CALLER_ARG) if self.is_domain_op else names

    def signature(self) -> inspect.Signature:
        """The request's arguments as a Python signature (what client methods take)."""
        params = [
            inspect.Parameter(
                a.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=inspect.Parameter.empty if a.required else None,
                annotation=a.type if a.required else a.type | None,
            )
            for a in self.args
        ]
        if self.is_domain_op:
            params.append(
                inspect.Parameter(
                    CALLER_ARG,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=None,
                    annotation=str | None,
                )
            )
        return inspect.Signature(params)

    def order_key(self, args: Mapping[str, Any]) -> Any:
        """What a request of this op is ordered by, before its args are checked.

        A report naming its instance (a string in its ``ordered_by`` field)
        is ordered with the other reports of that instance only, so reports
        of different instances are handled side by side; every other request
        (and a report that names none) has the key ``SERIAL`` and is handled
        alone, in arrival order with everything else, as with one consumer.
        """
        if self.ordered_by is not None and self.args:
            content = args.get(self.args[0].name)
            if isinstance(content, Mapping):
                instance = content.get(self.ordered_by)
                if isinstance(instance, str):
                    return ("instance", instance)
        return SERIAL

    def check_args(self, args: Mapping[str, Any]) -> None:
        """Raise ``BadRequestError`` for a declared argument of the wrong type.

        ``args`` are already bound to ``signature()`` (names are known).
        """
        for arg in self.args:
            if arg.name in args:
                arg.check(self.name, args[arg.name])

    def resolve_caller(
        self, given: Any, default_user: str | None, sender: str | None
    ) -> str | None:
        """The caller the facade gets: see ``CallerFrom``.

        A domain op with neither a ``caller`` nor a ``default_user``, or with
        a caller that is not a string, is a ``BadRequestError``.
        """
        if self.caller is CallerFrom.NONE:
            return None
        if self.caller is CallerFrom.SENDER:
            return sender
        owner = given or default_user
        if not owner:
            raise BadRequestError(
                f"{self.name} needs a caller (the domain owner) and the service "
                "has no default_user configured"
            )
        if not isinstance(owner, str):
            raise BadRequestError(
                f"{self.name}: caller must be a string, not {type(owner).__name__}"
            )
        return owner

    def facade_args(self, args: Mapping[str, Any], caller: str | None) -> tuple[Any, ...]:
        """The positional arguments of the facade method: the caller (unless the op
        takes none), then each declared argument (None when absent)."""
        values = tuple(args.get(a.name) for a in self.args)
        return values if self.caller is CallerFrom.NONE else (caller, *values)


def declare(*operations: Operation) -> tuple[Operation, ...]:
    """``operations`` as a tuple, once names, methods and commands are checked unique."""
    for what, key in (
        ("operation", lambda op: op.name),
        ("facade method", lambda op: op.method),
        ("command", lambda op: op.command_name if op.on_command_line else None),
    ):
        seen: set[str] = set()
        for op in operations:
            value = key(op)
            if value is None:
                continue
            if value in seen:
                raise ValueError(f"{what} {value!r} is declared twice")
            seen.add(value)
    return tuple(operations)


def by_name(operations: Iterable[Operation]) -> dict[str, Operation]:
    """Wire name -> operation."""
    return {op.name: op for op in operations}


def facade_disagreements(operations: Iterable[Operation], facade: Any) -> list[str]:
    """What keeps ``facade`` (a class or an instance) from serving ``operations``: for
    each op, its ``msg_*`` method must exist and take the caller (unless the op
    has none) and the declared arguments as its leading parameters, in order,
    optional exactly where the declaration says so; any further parameter
    needs a default.  An empty list means they agree."""
    problems = []
    for op in operations:
        method = getattr(facade, op.method, None)
        if not callable(method):
            problems.append(f"{op.name}: the facade has no {op.method}")
            continue
        params = [p for p in inspect.signature(method).parameters.values() if p.name != "self"]
        expected = [(a.facade_param, a.required) for a in op.args]
        if op.caller is not CallerFrom.NONE:
            expected.insert(0, (CALLER_ARG, True))
        actual = [(p.name, p.default is inspect.Parameter.empty) for p in params]
        if actual[: len(expected)] != expected:
            problems.append(
                f"{op.name}: {op.method} takes {[p.name for p in params]}, "
                f"the declaration says {[name for name, _ in expected]} "
                f"(required: {[name for name, req in expected if req]})"
            )
        extra = [p.name for p in params[len(expected) :] if p.default is inspect.Parameter.empty]
        if extra:
            problems.append(f"{op.name}: {op.method} requires undeclared {extra}")
    return problems
