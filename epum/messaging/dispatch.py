"""The dispatch table: one map from operation name to handler.

``Dispatcher.prepare`` checks a request before anything runs: the op must
be in the table (else ``UnknownOperationError``) and the args must bind to
the handler's signature (else ``BadRequestError``); a handler that is a
``PreparingHandler`` then checks the bound arguments further (types, the
caller) and returns the call to run.  A request that fails these checks
touched nothing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol, runtime_checkable

from epum.errors import BadRequestError, UnknownOperationError
from epum.operation_spec import SERIAL
from epum.validation import short

Handler = Callable[..., Any]


@runtime_checkable
class PreparingHandler(Protocol):
    """A handler that checks its bound arguments itself before anything runs."""

    def __call__(self, **arguments: Any) -> Any:
        """Check, then run."""

    def prepare(self, arguments: dict[str, Any]) -> Callable[[], Any]:
        """The call to run with ``arguments`` (already bound to the signature);
        raises ``BadRequestError`` naming what is wrong with them."""


class Dispatcher:
    """Routes ``(op, args)`` to the handler registered for ``op``.

    Handlers take keyword arguments only (what a request's ``args`` holds);
    their signature (``inspect.signature``, so a ``__signature__`` too) is
    what a request's args must bind to.
    """

    def __init__(self, table: Mapping[str, Handler]):
        self._table = dict(table)
        self._signatures = {op: inspect.signature(fn) for op, fn in self._table.items()}
        self._preparing = {op for op, fn in self._table.items() if isinstance(fn, PreparingHandler)}
        # ops whose arguments are plain keywords: (required names, accepted names)
        self._keywords = {
            op: keywords for op, sig in self._signatures.items() if (keywords := _keywords(sig))
        }

    @property
    def ops(self) -> list[str]:
        """The operation names served, sorted."""
        return sorted(self._table)

    def __contains__(self, op: object) -> bool:
        return op in self._table

    def prepare(self, op: str, args: Mapping[str, Any]) -> Callable[[], Any]:
        """A no-argument callable that runs ``op`` with ``args``, once they are checked.

        Raises ``UnknownOperationError`` for an op not in the table and
        ``BadRequestError`` naming the problem when ``args`` do not bind.
        """
        handler = self._table.get(op)
        if handler is None:
            raise UnknownOperationError(f"unknown operation {short(op)}")
        bad = [k for k in args if not isinstance(k, str) or not k.isidentifier()]
        if bad:
            raise BadRequestError(f"{op}: argument names must be identifiers, got {short(bad)}")
        keywords = self._keywords.get(op)
        if keywords is not None and keywords[0] <= args.keys() <= keywords[1]:
            # they bind (the common case, checked without building a BoundArguments)
            if op in self._preparing:
                return handler.prepare(dict(args))  # type: ignore[attr-defined]
            return functools.partial(handler, **args)
        try:
            bound = self._signatures[op].bind(**args)
        except TypeError as exc:
            raise BadRequestError(f"{op}: {short(str(exc), 200)}") from None
        if op in self._preparing:
            return handler.prepare(dict(bound.arguments))  # type: ignore[attr-defined]
        return functools.partial(handler, *bound.args, **bound.kwargs)

    def order_key(self, op: str, args: Mapping[str, Any]) -> Hashable:
        """What ``op`` with ``args`` is ordered by: requests with equal keys are handled
        in arrival order.  The handler's ``order_key(args)`` when it has one (and the op
        is known), else ``SERIAL``, shared by every such request."""
        order_key = getattr(self._table.get(op), "order_key", None)
        return order_key(args) if order_key is not None else SERIAL

    def quick(self, op: str) -> bool:
        """True if ``op``'s handler says it is quick (``quick = True``: served without a
        store round trip in the steady state), so worth running on the consumer's
        thread rather than handing it to another."""
        return getattr(self._table.get(op), "quick", False) is True

    def dispatch(self, op: str, args: Mapping[str, Any]) -> Any:
        """Check the request, then run it and return the handler's result."""
        return self.prepare(op, args)()


def _keywords(signature: inspect.Signature) -> tuple[frozenset[str], frozenset[str]] | None:
    """(required, accepted) argument names of a signature that takes keywords only
    (plain or keyword-only parameters, no ``**kwargs``); None for any other."""
    params = signature.parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(p.kind not in kinds for p in params):
        return None
    required = frozenset(p.name for p in params if p.default is inspect.Parameter.empty)
    return required, frozenset(p.name for p in params)
