"""The call context: which request a piece of work belongs to, for the logs.

The RPC server enters a context around each message; anything logged while
the request is handled (in the facade too, same thread) carries its request
id, op and caller (``epum.logcontext.LogContextFilter`` on the handlers puts
them on each record).  A ``ContextVar`` holds it,
so there is no other global state and threads never see each other's.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from epum.logcontext import log_fields


@dataclass(frozen=True)
class CallContext:
    """One request in hand: its id, operation, caller (domain owner) and sender."""

    request_id: str
    op: str | None = None
    caller: str | None = None
    sender: str | None = None


_current: ContextVar[CallContext | None] = ContextVar("epum_call_context", default=None)


def current() -> CallContext | None:
    """The context of the request being handled in this thread, or None."""
    return _current.get()


@contextlib.contextmanager
def call_context(
    request_id: str | None = None,
    op: str | None = None,
    caller: str | None = None,
    sender: str | None = None,
) -> Iterator[CallContext]:
    """Make a context current for the ``with`` block (a new request id if none)."""
    ctx = CallContext(request_id or uuid.uuid4().hex, op, caller, sender)
    token = _current.set(ctx)
    try:
        with log_fields(request_id=ctx.request_id, op=op, caller=caller):
            yield ctx
    finally:
        _current.reset(token)


@contextlib.contextmanager
def with_caller(caller: str | None) -> Iterator[None]:
    """Record the resolved caller in the current context for the ``with`` block."""
    ctx = _current.get()
    if ctx is None:
        yield
        return
    token = _current.set(CallContext(ctx.request_id, ctx.op, caller, ctx.sender))
    try:
        with log_fields(caller=caller):
            yield
    finally:
        _current.reset(token)
