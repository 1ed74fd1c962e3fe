"""The bodies on the wire: requests, replies and the error envelope.

Request: ``{"op": <name>, "args": {<keyword args>}}``.  Reply:
``{"result": <value>, "error": null}`` or ``{"result": null, "error":
{"exc_type", "value", "traceback"}}``.  The four errors every client knows
travel under their ``dashi.exceptions.*`` names (``epum.errors.WIRE_NAMES``);
any other error under its class name.  A client rebuilds only the known
types (an allow-list); everything else comes back as ``RemoteError``.

Bodies are encoded here with the standard ``json`` module, strictly (no NaN,
nothing ``json`` cannot represent), so what is checked is what is sent.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from typing import Any

from epum.errors import WIRE_NAMES, BadRequestError, EpumError, RemoteError

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"

#: The longest error message a reply carries (a longer one is cut): an error
#: never echoes a client's large value back in full.
MAX_ERROR_TEXT = 1000

#: The longest traceback a reply carries (its last lines are kept).
MAX_TRACEBACK_TEXT = 4000

#: Wire name -> the class a client raises for it (the allow-list).
KNOWN_ERRORS: dict[str, type[EpumError]] = {name: cls for cls, name in WIRE_NAMES.items()}


def encode(obj: Any) -> str:
    """``obj`` as strict JSON text; raises ``TypeError``/``ValueError`` if it cannot be."""
    return json.dumps(obj, allow_nan=False)


def request(op: str, args: Mapping[str, Any] | None = None) -> str:
    """The encoded body of a request for ``op`` with keyword ``args``."""
    return encode({"op": op, "args": dict(args or {})})


def parse_request(body: Any) -> tuple[str, dict[str, Any]]:
    """``(op, args)`` of a decoded request body; ``BadRequestError`` if malformed.

    ``args`` may be missing or null (no arguments); otherwise it must be an
    object whose keys are strings.
    """
    if not isinstance(body, dict):
        raise BadRequestError(f"request body must be a JSON object, got {type(body).__name__}")
    op = body.get("op")
    if not isinstance(op, str) or not op:
        raise BadRequestError("request body needs 'op', a non-empty string")
    args = body.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise BadRequestError(f"'args' of {op} must be a JSON object, got {type(args).__name__}")
    return op, args


def error_type_name(exc: BaseException) -> str:
    """The name ``exc`` travels under."""
    for cls, name in WIRE_NAMES.items():
        if isinstance(exc, cls):
            return name
    return type(exc).__name__


def error_dict(exc: BaseException, with_traceback: bool = True) -> dict[str, Any]:
    """The error envelope of ``exc``: ``{"exc_type", "value", "traceback"}``."""
    tb = None
    if with_traceback and exc.__traceback__ is not None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    value = str(exc)
    if len(value) > MAX_ERROR_TEXT:
        value = f"{value[:MAX_ERROR_TEXT]}... (cut from {len(value)} chars)"
    if tb is not None and len(tb) > MAX_TRACEBACK_TEXT:
        tb = f"... (cut from {len(tb)} chars)\n{tb[-MAX_TRACEBACK_TEXT:]}"
    return {"exc_type": error_type_name(exc), "value": value, "traceback": tb}


def reply_ok(result: Any) -> str:
    """The encoded success reply; raises ``TypeError``/``ValueError`` if ``result``
    does not serialize (the caller then sends ``reply_error`` instead)."""
    return encode({"result": result, "error": None})


def reply_error(exc: BaseException) -> str:
    """The encoded error reply for ``exc``."""
    return encode({"result": None, "error": error_dict(exc)})


def error_from_dict(error: Mapping[str, Any]) -> Exception:
    """The exception a client raises for an error envelope (allow-list rebuild)."""
    exc_type = str(error.get("exc_type") or "UnknownError")
    value = str(error.get("value") or "")
    known = KNOWN_ERRORS.get(exc_type)
    if known is not None:
        return known(value)
    tb = error.get("traceback")
    return RemoteError(exc_type, value, tb if isinstance(tb, str) else None)


def unwrap_reply(body: Any) -> Any:
    """The result of a decoded reply body, or raise the error it carries."""
    if not isinstance(body, dict) or not ("result" in body or "error" in body):
        raise RemoteError("MalformedReply", f"reply is not a result/error object: {body!r:.200}")
    error = body.get("error")
    if error:
        if not isinstance(error, dict):
            raise RemoteError("MalformedReply", f"reply error is not an object: {error!r:.200}")
        raise error_from_dict(error)
    return body.get("result")
