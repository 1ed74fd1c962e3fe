"""Checks of what clients send, shared by the wire edge and the facade.

Pure functions over JSON values and ``LimitSettings``: each raises
``BadRequestError`` naming the field (and the limit, as ``limits.<name>``,
when a bound is passed) and echoes at most a short prefix of a bad value
(``short``).  Nothing here recurses: nested values are walked with an
explicit stack, so a deeply nested value is refused, never a
``RecursionError``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from epum.errors import BadRequestError
from epum.settings.limits import LimitSettings
from epum.states import InstanceHealthState, InstanceState

#: How many characters of a client's value an error message or log line shows.
SHORT = 60

#: The JSON scalar types a stored value may hold.
_SCALARS = (str, int, float, bool, type(None))


def short(value: Any, limit: int = SHORT) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was when cut.

    Safe on anything: a value whose ``repr`` fails is shown by its type.
    """
    if isinstance(value, str | bytes) and len(value) > limit * 4:
        value = value[: limit * 4]  # never build the repr of a huge string
        tail = " (cut)"
    else:
        tail = ""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} chars{tail})"
    return text + tail


def refuse_constant(name: str) -> Any:
    """A ``json.loads`` ``parse_constant`` hook: NaN and Infinity are refused."""
    raise BadRequestError(f"{name} is not a number JSON allows (NaN and Infinity are refused)")


def finite_float(text: str) -> float:
    """A ``json.loads`` ``parse_float`` hook: a number too large for a float is refused."""
    value = float(text)
    if not math.isfinite(value):
        raise BadRequestError(f"number {short(text)} is out of range")
    return value


#: The most a character takes in compact ``json.dumps``: an astral one is two
#: six-character ``\\u`` escapes.
MAX_ESCAPE = 12
#: The most one item adds besides its characters and an int's digits: quotes, ``:``
#: and ``,`` (4), or a float's longest repr (24) and ``,``.
MAX_ITEM = 28


def check_json(value: Any, limits: LimitSettings, what: str) -> int | None:
    """Raise ``BadRequestError`` unless ``value`` is plain JSON within the generic limits;
    return an upper bound of its length as compact JSON (None if it cannot tell).

    Plain JSON: mappings with string keys, lists, strings, finite numbers,
    booleans, null.  Limits: nesting at most ``max_depth``, every string at
    most ``max_string_length`` characters, every key at most
    ``max_name_length``.  The error names where in ``what`` the fault is
    (``what.key[2]``); the path is only spelled out for an error, so a value
    that passes costs one look at each of its items.  The bound (give it
    to ``check_size``) counts each character as its longest escape, each
    item as its longest punctuation and float, and each int by its bits.
    """
    max_string, max_key, max_depth = (
        limits.max_string_length,
        limits.max_name_length,
        limits.max_depth,
    )
    chars = items = bits = 0
    bounded = True
    # (item, depth, trail): the trail is (parent trail, key or index), or None at the top
    stack: list[tuple[Any, int, Any]] = [(value, 0, None)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth, trail = pop()
        items += 1
        kind = type(item)
        if kind is str:
            if len(item) > max_string:
                raise _too_long(item, what, trail, max_string)
            chars += len(item)
        elif kind is int or kind is bool:
            bits += item.bit_length()
        elif item is None:
            pass
        elif kind is float:
            if not math.isfinite(item):
                raise BadRequestError(
                    f"{_where(what, trail)} must be a finite number, not {item!r}"
                )
        elif kind is dict or kind is list:
            if depth >= max_depth:
                raise BadRequestError(
                    f"{_where(what, trail)} nests deeper than limits.max_depth ({max_depth})"
                )
            if kind is list:
                for i, sub in enumerate(item):
                    push((sub, depth + 1, (trail, i)))
                continue
            for key, sub in item.items():
                if type(key) is not str and not isinstance(key, str):
                    raise BadRequestError(f"{_where(what, trail)} has a key that is not a string")
                if len(key) > max_key:
                    raise BadRequestError(
                        f"{_where(what, trail)} has a key of {len(key)} characters, over "
                        f"limits.max_name_length ({max_key})"
                    )
                chars += len(key)
                push((sub, depth + 1, (trail, key)))
        else:
            _check_other(item, depth, trail, what, limits, push)
            bounded = False
    return MAX_ESCAPE * chars + MAX_ITEM * items + bits // 3 if bounded else None


def _check_other(item: Any, depth: int, trail: Any, what: str, limits: LimitSettings, push) -> None:
    """``check_json`` for an item that is no plain ``dict``, ``list`` or scalar: a subclass,
    another ``Mapping``, a tuple, or no JSON value at all."""
    if isinstance(item, str):
        if len(item) > limits.max_string_length:
            raise _too_long(item, what, trail, limits.max_string_length)
    elif isinstance(item, float):
        if not math.isfinite(item):
            raise BadRequestError(f"{_where(what, trail)} must be a finite number, not {item!r}")
    elif isinstance(item, int):
        pass
    elif isinstance(item, Mapping | list | tuple):
        if depth >= limits.max_depth:
            raise BadRequestError(
                f"{_where(what, trail)} nests deeper than limits.max_depth ({limits.max_depth})"
            )
        if isinstance(item, Mapping):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise BadRequestError(f"{_where(what, trail)} has a key that is not a string")
                if len(key) > limits.max_name_length:
                    raise BadRequestError(
                        f"{_where(what, trail)} has a key of {len(key)} characters, over "
                        f"limits.max_name_length ({limits.max_name_length})"
                    )
                push((sub, depth + 1, (trail, key)))
        else:
            for i, sub in enumerate(item):
                push((sub, depth + 1, (trail, i)))
    else:
        raise BadRequestError(f"{_where(what, trail)} is not a JSON value ({type(item).__name__})")


def _too_long(item: str, what: str, trail: Any, limit: int) -> BadRequestError:
    return BadRequestError(
        f"{_where(what, trail)} is {len(item)} characters long, over "
        f"limits.max_string_length ({limit})"
    )


def _where(what: str, trail: Any) -> str:
    """``what`` followed by the keys (``.key``) and indexes (``[i]``) of ``trail``."""
    steps = []
    while trail is not None:
        trail, step = trail
        if isinstance(step, int):
            steps.append(f"[{step}]")
        else:
            steps.append(
                "." + (step if len(step) <= 40 and step.isprintable() else short(step, 30))
            )
    return what + "".join(reversed(steps))


def encoded_size(value: Any) -> int:
    """The length of ``value`` as compact JSON (``check_json`` it first)."""
    return len(json.dumps(value, separators=(",", ":"), allow_nan=False))


def check_size(
    value: Any, limit: int, limit_name: str, what: str, bound: int | None = None
) -> None:
    """Raise ``BadRequestError`` naming ``limits.<limit_name>`` if ``value`` encodes
    to more than ``limit`` bytes.  ``bound``: what ``check_json`` returned for
    ``value`` (the value is not encoded when the bound is within the limit)."""
    if bound is not None and bound <= limit:
        return
    size = encoded_size(value)
    if size > limit:
        raise BadRequestError(f"{what} is {size} bytes, over limits.{limit_name} ({limit})")


def check_name(value: Any, what: str, limits: LimitSettings) -> str:
    """``value`` if it is a non-empty string of at most ``max_name_length``; else refused."""
    if not isinstance(value, str) or not value:
        raise BadRequestError(f"{what} must be a non-empty string, not {short(value)}")
    if len(value) > limits.max_name_length:
        raise BadRequestError(
            f"{what} is {len(value)} characters long, over "
            f"limits.max_name_length ({limits.max_name_length})"
        )
    return value


def check_finite(value: Any, what: str) -> float:
    """``value`` as a float if it is a finite number (not a bool); else refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequestError(f"{what} must be a number, not {short(value)}")
    if not math.isfinite(value):
        raise BadRequestError(f"{what} must be a finite number, not {value!r}")
    return float(value)


# records ----------------------------------------------------------------------
_TEXT = (str,)
_NUMBER = (int, float)

#: Each record field -> the JSON types its value may have (None is allowed for
#: every field but the ones in ``_NOT_NULL``).
RECORD_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "instance_id": _TEXT,
    "launch_id": _TEXT,
    "site": _TEXT,
    "allocation": _TEXT,
    "state": _TEXT,
    "state_time": _NUMBER,
    "health": _TEXT,
    "deployable_type": _TEXT,
    "extravars": (dict,),
    "iaas_id": _TEXT,
    "public_ip": _TEXT,
    "private_ip": _TEXT,
    "hostname": _TEXT,
    "errors": (list,),
    "error_time": _NUMBER,
    "update_counter": (int,),
    "sensor_data": (dict,),
    "last_heard": _NUMBER,
    "agent_address": _TEXT,
}
_NOT_NULL = frozenset({"instance_id", "launch_id", "state", "state_time", "health"})
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", dict: "a mapping"}


def field_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` as the record field ``name`` (None: nothing)."""
    types = RECORD_FIELD_TYPES.get(name)
    if types is None:
        return None
    if value is None:
        return f"{name} must not be null" if name in _NOT_NULL else None
    if isinstance(value, bool) or not isinstance(value, types):
        words = " or ".join(_TYPE_WORDS.get(t, "a list") for t in types)
        return f"{name} must be {words}, not {short(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, not {value!r}"
    if name == "state" and value not in InstanceState.ALL:
        return f"state {short(value)} is not an instance state"
    if name == "health" and value not in InstanceHealthState.ALL:
        return f"health {short(value)} is not a health state"
    return None


def check_record_fields(content: Mapping[str, Any], what: str = "record") -> None:
    """Raise ``BadRequestError`` naming the first record field of the wrong type."""
    for name, value in content.items():
        problem = field_problem(name, value)
        if problem is not None:
            raise BadRequestError(f"{what}: {problem}")


def record_problem(record: Mapping[str, Any], limits: LimitSettings) -> str | None:
    """What keeps a stored record (as a dict) from being decided on (None: nothing)."""
    for name, value in record.items():
        problem = field_problem(name, value)
        if problem is not None:
            return f"instance {short(record.get('instance_id'), 40)}: {problem}"
    try:
        check_json(dict(record), limits, f"instance {short(record.get('instance_id'), 40)}")
    except BadRequestError as exc:
        return str(exc)
    return None


def check_heartbeat_fields(content: Mapping[str, Any]) -> None:
    """Raise ``BadRequestError`` naming a heartbeat field of the wrong type.

    ``error`` is a string or a mapping, ``error_time`` a finite number and
    ``failed_processes`` a list of mappings (each may be null or absent).
    """
    error = content.get("error")
    if error is not None and not isinstance(error, str | dict):
        raise BadRequestError(f"heartbeat error must be a string or a mapping, not {short(error)}")
    if content.get("error_time") is not None:
        check_finite(content["error_time"], "heartbeat error_time")
    failed = content.get("failed_processes")
    if failed is not None:
        if not isinstance(failed, list):
            raise BadRequestError("heartbeat failed_processes must be a list")
        bad = [p for p in failed if not isinstance(p, dict)]
        if bad:
            raise BadRequestError(
                f"heartbeat failed_processes must be a list of mappings, not {short(bad[0])}"
            )


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that strict JSON can carry: a non-finite float becomes its
    text, a non-JSON object its ``short`` repr.  For describing stored data that
    predates the checks; walks with a stack, so deep data cannot recurse."""
    root: list[Any] = [None]
    stack: list[tuple[Any, list[Any] | dict[str, Any], Any]] = [(value, root, 0)]
    while stack:
        item, parent, slot = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            parent[slot] = repr(item)
        elif isinstance(item, _SCALARS):
            parent[slot] = item
        elif isinstance(item, Mapping):
            copy: dict[str, Any] = {}
            parent[slot] = copy
            stack.extend((v, copy, str(k)) for k, v in item.items())
        elif isinstance(item, list | tuple):
            copy_list: list[Any] = [None] * len(item)
            parent[slot] = copy_list
            stack.extend((v, copy_list, i) for i, v in enumerate(item))
        else:
            parent[slot] = short(item)
    return root[0]


#: Engine conf keys that say how many instances a domain may hold.
SIZE_KEYS = ("preserve_n", "minimum_vms", "maximum_vms", "domain_desired_size")


def check_domain_size(engine_conf: Mapping[str, Any], limits: LimitSettings) -> None:
    """Raise ``BadRequestError`` naming ``limits.max_instances_per_domain`` when a size key
    of ``engine_conf`` (or a site's ``size`` in ``clouds``) asks for more instances.

    Values are read as the engines read them (``int()``); one that does not read as a
    number is left to the engine's own check.
    """
    sizes = [(key, engine_conf.get(key)) for key in SIZE_KEYS]
    clouds = engine_conf.get("clouds")
    if isinstance(clouds, list):
        sizes += [
            (f"clouds[{i}].size", c.get("size"))
            for i, c in enumerate(clouds)
            if isinstance(c, dict)
        ]
    for key, value in sizes:
        if value is None or isinstance(value, bool):
            continue
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            continue
        if number > limits.max_instances_per_domain:
            raise BadRequestError(
                f"engine_conf.{key} is {short(value, 30)}, over limits.max_instances_per_domain "
                f"({limits.max_instances_per_domain})"
            )
