"""The EPUM service's wire operations, derived from ``epum.operations`` onto the facade.

``EPUMOperations(facade, default_user).table()`` holds one handler per
declared operation.  Before the facade runs, ``Dispatcher`` binds the
request's args to the operation's signature (unknown or missing names are
refused) and the handler checks each argument's declared type and resolves
the caller (``Operation.resolve_caller``: for domain ops the request's
``caller``, else ``default_user``, else ``BadRequestError``; for reports the
request's ``sender`` header).  Then it calls the op's ``msg_*`` method with
the caller first and the arguments in declared order.  The facade method is
looked up at call time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from epum import logcontext
from epum.messaging.dispatch import Handler
from epum.operations import CALLER_ARG, OPERATIONS, Operation


class OperationHandler:
    """Serves one declared ``Operation`` on a facade (a ``PreparingHandler``)."""

    def __init__(self, operation: Operation, facade: Any, default_user: str | None):
        self.operation = operation
        self.facade = facade
        self.default_user = default_user
        self.quick = operation.quick
        self.__signature__: inspect.Signature = operation.signature()
        self.__doc__ = operation.help

    def prepare(self, arguments: dict[str, Any]) -> Callable[[], Any]:
        """Check ``arguments`` (bound to the signature) and resolve the caller; the call
        of the facade method that is left to run."""
        op = self.operation
        op.check_args(arguments)
        caller = op.resolve_caller(
            arguments.get(CALLER_ARG), self.default_user, logcontext.current().sender
        )
        positional = op.facade_args(arguments, caller)

        def run() -> Any:
            return getattr(self.facade, op.method)(*positional)

        return run

    def order_key(self, args: Mapping[str, Any]) -> Any:
        """What a request of this op is ordered by (``Operation.order_key``)."""
        return self.operation.order_key(args)

    def __call__(self, **arguments: Any) -> Any:
        """Check, then run (what ``Dispatcher.dispatch`` does, without the binding)."""
        return self.prepare(arguments)()

    def __repr__(self) -> str:
        return f"<OperationHandler {self.operation.name} -> {self.operation.method}>"


class EPUMOperations:
    """Wire ops -> ``facade.msg_*``; ``table()`` is the dispatch table."""

    def __init__(
        self,
        facade: Any,
        default_user: str | None = None,
        operations: Iterable[Operation] = OPERATIONS,
    ):
        self.facade = facade
        self.default_user = default_user
        self.operations = tuple(operations)

    def table(self) -> dict[str, Handler]:
        """Op name -> handler, for ``Dispatcher``."""
        return {
            op.name: OperationHandler(op, self.facade, self.default_user) for op in self.operations
        }
