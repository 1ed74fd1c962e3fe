"""What handling one request came to, and where its reply goes (dashi or AMQP style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
