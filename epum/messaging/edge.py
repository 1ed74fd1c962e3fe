"""The wire edge: what a request body must be before anything reads it.

Checked here, once, for every message a server takes, before the dispatcher
sees it (each refusal is a ``BadRequestError`` naming the limit):

- compression: a ``compression`` header is refused, and the body is never
  inflated (kombu would inflate it while building the message, so
  ``GuardedConsumer`` takes the header off the raw message first);
- content type: JSON only (``envelope.CONTENT_TYPE``), never deserialized;
- size: the body's bytes, at most ``limits.max_message_bytes``;
- JSON: strict (NaN, Infinity and numbers too large for a float refused),
  nested at most ``limits.max_depth``, every string within
  ``limits.max_string_length`` and key within ``limits.max_name_length``.
"""

from __future__ import annotations

import json
from typing import Any

from kombu import Consumer

from epum.errors import BadRequestError
from epum.messaging import envelope
from epum.settings.limits import LimitSettings
from epum.validation import check_json, finite_float, refuse_constant, short

#: The header a refused ``compression`` header is moved to (its value, shortened).
REFUSED_COMPRESSION = "x-epum-refused-compression"

#: Strict JSON: NaN, Infinity and floats too large refused (made once, not per message).
_STRICT_JSON = json.JSONDecoder(parse_constant=refuse_constant, parse_float=finite_float)


def _raw_headers(raw: Any) -> Any:
    """The application headers of a raw transport message (py-amqp or a virtual one)."""
    if isinstance(raw, dict):  # kombu's virtual transports
        return raw.get("headers")
    properties = getattr(raw, "properties", None)
    return properties.get("application_headers") if isinstance(properties, dict) else None


class GuardedConsumer(Consumer):
    """A kombu ``Consumer`` that never lets kombu inflate a compressed body.

    kombu decompresses a body named by a ``compression`` header while it
    builds the message, before any callback runs; this consumer moves the
    header to ``REFUSED_COMPRESSION`` on the raw message first, so the
    message arrives as sent and ``decode_body`` refuses it.
    """

    def _receive_callback(self, message: Any) -> Any:
        headers = _raw_headers(message)
        if isinstance(headers, dict) and "compression" in headers:
            headers[REFUSED_COMPRESSION] = short(headers.pop("compression"), 40)
        return super()._receive_callback(message)


def decode_body(message: Any, limits: LimitSettings) -> Any:
    """The checked JSON body of ``message``; ``BadRequestError`` naming what is wrong."""
    headers = message.headers or {}
    if REFUSED_COMPRESSION in headers:
        raise BadRequestError(
            f"refused a compressed message (compression {headers[REFUSED_COMPRESSION]}): "
            "send plain JSON"
        )
    if message.content_type != envelope.CONTENT_TYPE:
        raise BadRequestError(
            f"refused a message of content type {short(message.content_type, 40)}: "
            f"only {envelope.CONTENT_TYPE} is accepted"
        )
    body = message.body
    size = len(body) if isinstance(body, bytes | str) else 0
    if size > limits.max_message_bytes:
        raise BadRequestError(
            f"refused a message of {size} bytes, over limits.max_message_bytes "
            f"({limits.max_message_bytes})"
        )
    try:  # plain json: kombu's decoder would turn {"__type__", "__value__"} into objects
        if isinstance(body, bytes | bytearray):  # as json.loads reads bytes
            body = body.decode(json.detect_encoding(body), "surrogatepass")
        value = _STRICT_JSON.decode(body)
    except RecursionError:
        raise BadRequestError(
            f"request body nests deeper than limits.max_depth ({limits.max_depth})"
        ) from None
    except (ValueError, TypeError) as exc:
        raise BadRequestError(f"request body is not valid JSON: {short(str(exc), 120)}") from None
    check_json(value, limits, "request")
    return value
