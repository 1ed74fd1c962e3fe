"""How the stores encode what they keep: JSON bytes, and the checks on the way back.

``dump`` refuses, before anything is written, a value JSON cannot carry
(``CorruptDataError``: it cannot be stored) and one too large for a znode
(``BadRequestError``: the request carried too much); ``load`` and ``field``
refuse stored bytes that are not the JSON (or the shape) epum wrote, naming
the path (``CorruptDataError``).  The JSON failures are server-side
problems, never the caller's ``BadRequestError``.
"""

from __future__ import annotations

import json
from typing import Any

from epum.errors import BadRequestError, CorruptDataError

#: The largest value one store write may carry.  ZooKeeper refuses a packet over
#: its ``jute.maxbuffer`` (1 MB by default) by dropping the session, which would
#: stop every worker's work; this bound keeps each value, its path and framing
#: well under it, checked before anything is sent (the memory store checks it
#: too, so both stores refuse the same writes).
MAX_VALUE_BYTES = 1_000_000


def dump(value: Any, what: str = "value") -> bytes:
    """JSON bytes of ``value``; CorruptDataError (naming ``what``) if JSON cannot carry it,
    BadRequestError if it is over ``MAX_VALUE_BYTES``."""
    try:
        raw = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        raise CorruptDataError(f"{what} cannot be stored as JSON: {str(exc)[:200]}") from None
    if len(raw) > MAX_VALUE_BYTES:
        raise BadRequestError(
            f"{what} is {len(raw)} bytes, over the store's bound of {MAX_VALUE_BYTES} bytes "
            "(under ZooKeeper's jute.maxbuffer)"
        )
    return raw


def load(raw: bytes | None, path: str) -> Any:
    """The value of the JSON bytes stored at ``path`` (None for an empty znode).

    CorruptDataError naming ``path`` if they are not JSON.
    """
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise CorruptDataError(f"{path} holds data that is not JSON: {exc}") from exc


def field(value: Any, key: str, path: str) -> Any:
    """``value[key]`` of the object stored at ``path``; CorruptDataError if it has none."""
    if not isinstance(value, dict) or key not in value:
        raise CorruptDataError(f"{path} holds no {key!r}: {value!r:.200}")
    return value[key]
