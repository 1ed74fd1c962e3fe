"""Log lines that carry the domain and the caller they concern.

Two ways in, one result (``caller`` and ``domain`` attributes on each
record): ``DomainLogger`` for epum's own role code, which also names them in
the message text; and ``log_fields``, a context the decider enters around an
engine's calls, so lines logged by engines (plug-ins that know nothing of
this) carry them too once ``LogContextFilter`` is on the handlers (as
``config/logging.yaml`` sets it up).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

#: The fields every epum log record carries ("-" where none applies).
LOG_FIELDS = ("request_id", "op", "caller", "domain")

_fields: ContextVar[Mapping[str, str]] = ContextVar("epum_log_fields", default={})  # noqa: B039


@contextlib.contextmanager
def log_fields(**fields: str | None) -> Iterator[None]:
    """Add ``fields`` to every record logged in this thread during the block."""
    merged = {**_fields.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _fields.set(merged)
    try:
        yield
    finally:
        _fields.reset(token)


def current_fields() -> Mapping[str, str]:
    """The log fields in force in this thread."""
    return _fields.get()


class LogContextFilter(logging.Filter):
    """Gives each record the current ``LOG_FIELDS``; never overrides, never drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _fields.get()
        for name in LOG_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, fields.get(name, "-"))
        return True


class DomainLogger(logging.LoggerAdapter):
    """A logger whose every line names its domain and caller.

    The names are put in front of the message and in the record's ``extra``
    (``domain``, ``caller``), so both plain and structured handlers see them.
    """

    def __init__(self, logger: logging.Logger, caller: str, domain_id: str):
        super().__init__(logger, {"caller": caller, "domain": domain_id})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs.setdefault("extra", {}).update(self.extra)
        return f"[caller={self.extra['caller']} domain={self.extra['domain']}] {msg}", kwargs


def domain_logger(logger: logging.Logger, caller: str, domain_id: str) -> DomainLogger:
    """A ``DomainLogger`` for ``caller``'s domain ``domain_id``."""
    return DomainLogger(logger, caller, domain_id)
