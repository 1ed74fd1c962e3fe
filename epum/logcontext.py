"""The one way log lines learn what they concern: request id, op, caller and domain.

A ``LogContext`` lives in a ``ContextVar``, so each thread (the RPC consumer,
each leader loop) has its own and nothing else is global.  Code that starts
a piece of work enters a context: the RPC server around each request
(``request_context``: a request id, the op, the sender), the facade around
each domain op and the roles around each domain they work on
(``log_context(caller=..., domain=...)``).  Everything logged inside, by
epum's code or by plug-in engines that know nothing of this, carries the
fields once ``LogContextFilter`` is on the handlers (``config/logging.yaml``
and the worker's default logging set it up).  Messages themselves carry no
prefix: a format names the fields (``%(caller)s``, ``%(domain)s``).

The request's ``sender`` is kept in the context too: reports take it as
their caller.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import uuid
from collections.abc import Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass

#: The fields every epum log record carries ("-" where none applies).
LOG_FIELDS = ("request_id", "op", "caller", "domain")


@dataclass(frozen=True)
class LogContext:
    """The work in hand: its request id and op (for a request), sender, caller, domain."""

    request_id: str | None = None
    op: str | None = None
    caller: str | None = None
    domain: str | None = None
    sender: str | None = None


_EMPTY = LogContext()
_current: ContextVar[LogContext] = ContextVar("epum_log_context", default=_EMPTY)
_NAMES = frozenset(f.name for f in dataclasses.fields(LogContext))


def current() -> LogContext:
    """The context in force in this thread (all fields None outside any)."""
    return _current.get()


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[LogContext]:
    """Set ``fields`` (any of ``LogContext``'s) for the ``with`` block, keeping the rest.

    A field given as None keeps its current value.  An unknown field name
    is a ``TypeError`` naming it.
    """
    unknown = sorted(set(fields) - _NAMES)
    if unknown:
        raise TypeError(f"unknown log context field(s): {', '.join(unknown)}")
    given = {k: v for k, v in fields.items() if v is not None}
    ctx = dataclasses.replace(_current.get(), **given)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


#: Request ids made here: this process's random prefix and a counter (as unique as
#: a uuid4 across processes, without reading the system's randomness each time).
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    global _ID_PREFIX
    _ID_PREFIX = uuid.uuid4().hex[:16]


os.register_at_fork(after_in_child=_new_id_prefix)  # a forked child is another process


def new_request_id() -> str:
    """A request id no other request of any process is likely to have (32 hex digits)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class RequestContext:
    """The context of one request, in force for a ``with`` block (what ``request_context``
    makes; a class rather than a generator, as it runs once per message)."""

    __slots__ = ("_token", "context")

    def __init__(self, context: LogContext):
        self.context = context
        self._token: Token[LogContext] | None = None

    def __enter__(self) -> LogContext:
        self._token = _current.set(self.context)
        return self.context

    def __exit__(self, *exc_info: object) -> None:
        assert self._token is not None
        _current.reset(self._token)


def request_context(
    op: str | None = None, sender: str | None = None, request_id: str | None = None
) -> RequestContext:
    """A fresh context for one request (a new request id unless one is given)."""
    return RequestContext(
        LogContext(request_id=request_id or new_request_id(), op=op, sender=sender)
    )


class LogContextFilter(logging.Filter):
    """Gives each record the current ``LOG_FIELDS`` ("-" when unset) and ``sender``;
    never overrides an attribute the record already has, never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _current.get()
        for name in (*LOG_FIELDS, "sender"):
            if not hasattr(record, name):
                value = getattr(ctx, name)
                setattr(record, name, "-" if value is None else value)
        return True
