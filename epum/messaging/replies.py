"""What handling one request came to, and where its reply goes (dashi or AMQP style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from epum.messaging.envelope import CONTENT_ENCODING, CONTENT_TYPE


@dataclass(frozen=True)
class Outcome:
    """What handling one request came to: the reply, and why it failed (None: it did not)."""

    payload: str
    failure: str | None = None
    store_unavailable: bool = False


@dataclass(frozen=True)
class ReplyRoute:
    """Where the reply to one request goes."""

    routing_key: str
    correlation_id: str | None
    standard: bool  # True: default exchange + correlation_id; False: dashi exchange


def reply_route(headers: dict[str, Any], properties: dict[str, Any]) -> ReplyRoute | None:
    """The reply route a request asks for, or None for a fire."""
    reply_to = properties.get("reply_to")
    if reply_to:
        return ReplyRoute(str(reply_to), properties.get("correlation_id"), standard=True)
    dashi_reply = headers.get("reply-to")
    if dashi_reply:
        return ReplyRoute(str(dashi_reply), None, standard=False)
    return None


def reply_options(route: ReplyRoute, exchange_name: str) -> dict[str, Any]:
    """kombu ``publish`` options that send a reply where ``route`` says: the default
    exchange with the correlation id (AMQP style), or the service exchange
    ``exchange_name`` (dashi style); transient, JSON."""
    options: dict[str, Any] = {
        "exchange": "" if route.standard else exchange_name,
        "routing_key": route.routing_key,
        "content_type": CONTENT_TYPE,
        "content_encoding": CONTENT_ENCODING,
        "delivery_mode": 1,
    }
    if route.standard:
        options["correlation_id"] = route.correlation_id
    return options
