"""Reading config values the way deployments of the original system wrote them.

The original read numbers with ``int()``/``float()``, so ``"2"`` worked where
2 was meant, and its configs came from YAML and JSON written by hand.  These
functions accept the same, and refuse everything else with a message that
names the key.  Two choices where the original was buggy or silent:

- a bool is read from ``true``/``false`` (any case), ``yes``/``no``, ``on``/
  ``off``, ``1``/``0`` and the integers 1/0; the original's ``bool("false")``
  was true, which is never what the writer meant;
- an integer may be given as a whole float (``2.0``) or a numeric string
  (``"2"``, ``" 3 "``); ``2.5`` and ``"2.5"`` are refused rather than truncated
  as ``int(2.5)`` did, since a silently dropped fraction is a wrong size.
"""

from __future__ import annotations

import math
from typing import Any

from epum.errors import BadRequestError

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def as_bool(key: str, value: Any) -> bool:
    """``value`` as a bool (see the module doc), else BadRequestError naming ``key``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise BadRequestError(f"{key} must be true or false, not {value!r}")


def as_number(key: str, value: Any) -> float:
    """``value`` as a finite float (numbers and numeric strings), else BadRequestError."""
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise BadRequestError(f"{key} must be a number, not {value!r}") from None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise BadRequestError(f"{key} must be a number, not {value!r}")
    if not math.isfinite(number):
        raise BadRequestError(f"{key} must be a number, not {value!r}")
    return float(number)


def as_int(key: str, value: Any) -> int:
    """``value`` as an int (ints, whole floats, integer strings), else BadRequestError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    if isinstance(value, (str, float)) and not isinstance(value, bool):
        try:
            number = as_number(key, value)
        except BadRequestError:
            number = math.nan
        if number.is_integer():
            return int(number)
    raise BadRequestError(f"{key} must be an integer, not {value!r}")
