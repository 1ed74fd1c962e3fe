"""Building the tree: from a mapping of the config file's shape, or from ``initial_conf``."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from epum.errors import ConfigError
from epum.settings.checks import Checked
from epum.settings.original import IGNORED_ORIGINAL_KEYS
from epum.settings.tree import INITIAL_CONF_KEYS, Settings


def settings_from_dict(
    data: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> Settings:
    """The tree from a mapping of the config file's shape (PROTOCOL.md section 6).

    Raises ``ConfigError`` naming the key of a bad value (``labels`` maps a
    dotted path to the name to use instead); unknown keys become warnings.
    """
    labels = labels or {}
    warnings: list[str] = []
    data = _mapping(data, "the config")
    _report_unknown("", data, _ROOT_KEYS, warnings)
    server = _mapping(data.get("server"), "server")
    _report_unknown("server", server, _ROOT_KEYS_OF_SERVER, warnings)
    hints = typing.get_type_hints(Settings)
    values: dict[str, Any] = {}
    for f in fields(Settings):
        path = f.metadata.get("path")
        if path is None:
            continue
        parent, _, leaf = path.rpartition(".")
        holder = server if parent == "server" else data
        if leaf not in holder:
            continue
        hint, raw = hints[f.name], holder[leaf]
        section = _section_class(hint)
        if section is None:
            values[f.name] = _value(f, hint, raw, labels.get(path, path))
        elif raw is not None or type(None) not in typing.get_args(hint):
            values[f.name] = build_section(section, raw, path, warnings, labels)
    return Settings(**values, warnings=tuple(warnings))


def settings_from_initial_conf(conf: Mapping[str, Any] | None) -> Settings:
    """The tree from the facade's ``initial_conf``, moved by ``INITIAL_CONF_KEYS``.

    A None value means the default, as the facade has always taken it.
    Errors name the ``initial_conf`` key; unknown keys become warnings.
    """
    if conf is None:
        conf = {}
    if not isinstance(conf, Mapping):
        raise ConfigError(f"initial_conf must be a mapping, not {type(conf).__name__}")
    warnings: list[str] = []
    nested: dict[str, Any] = {}
    for key, value in conf.items():
        path = INITIAL_CONF_KEYS.get(key)
        if path is None:
            _report_unknown("initial_conf", {key: value}, INITIAL_CONF_KEYS, warnings)
        elif value is not None:
            *parents, leaf = path.split(".")
            node = nested
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    labels = {path: key for key, path in INITIAL_CONF_KEYS.items()}
    built = settings_from_dict(nested, labels)
    return built.replace(warnings=(*warnings, *built.warnings))


def to_initial_conf(settings: Settings) -> dict[str, Any]:
    """The ``initial_conf`` keys of ``INITIAL_CONF_KEYS`` with the values of ``settings``.

    The inverse of ``settings_from_initial_conf``: the flat keys of a built tree,
    for a caller that hands them on as a facade's ``initial_conf``.
    """
    by_path = {f.metadata["path"]: f.name for f in fields(Settings) if f.metadata.get("path")}
    out = {}
    for key, path in INITIAL_CONF_KEYS.items():
        parent, _, leaf = path.rpartition(".")
        if parent:  # a field of a section
            value = getattr(getattr(settings, by_path[parent]), leaf)
        else:  # a field of the root
            value = getattr(settings, by_path[path])
        out[key] = copy.deepcopy(value)
    return out


_S = typing.TypeVar("_S")


def build_section(
    cls: type[_S],
    value: Any,
    where: str,
    warnings: list[str],
    labels: Mapping[str, str] | None = None,
) -> _S:
    """One section dataclass from its mapping (or the section itself), each value checked
    against its hint."""
    if isinstance(value, cls):
        return value
    data = _mapping(value, where)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    _report_unknown(where, data, names, warnings)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            path = f"{where}.{f.name}"
            kwargs[f.name] = _value(f, hints[f.name], data[f.name], (labels or {}).get(path, path))
    return cls(**kwargs)


#: The keys a config file may have at its top level and under ``server``.
_PATHS = [p for f in fields(Settings) if (p := f.metadata.get("path"))]
_ROOT_KEYS = ["server", *(p for p in _PATHS if "." not in p)]
_ROOT_KEYS_OF_SERVER = [p.split(".", 1)[1] for p in _PATHS if p.startswith("server.")]


def _report_unknown(
    where: str, data: Mapping[str, Any], known: Iterable[str], warnings: list[str]
) -> None:
    known = list(known)
    for key in data:
        if key in known:
            continue
        dotted = f"{where}.{key}" if where else str(key)
        if dotted in IGNORED_ORIGINAL_KEYS:
            why = IGNORED_ORIGINAL_KEYS[dotted]
            warnings.append(f"{dotted} (a key of the original EPU services) ignored: {why}")
            continue
        near = difflib.get_close_matches(str(key), known, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        warnings.append(f"unknown key {dotted} ignored{hint}")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _section_class(hint: Any) -> type | None:
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Checked):
            return candidate
    return None


def _value(f: dataclasses.Field[Any], hint: Any, value: Any, key: str) -> Any:
    """``value`` coerced to ``hint`` and checked by the field's check."""
    value = _coerce(value, hint, key, f.metadata.get("secret", False))
    convert = f.metadata.get("convert")
    if convert is not None and value is not None:
        value = convert(value)
    check = f.metadata.get("check")
    if check is not None and value is not None:
        check(value, key)
    return value


def _coerce(value: Any, hint: Any, key: str, secret: bool) -> Any:
    """``value`` checked against ``hint`` (ints allowed for floats); ConfigError if not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if args and type(None) in args:  # X | None
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if origin is dict and isinstance(value, Mapping):
        return copy.deepcopy(dict(value))
    if origin is tuple and isinstance(value, list | tuple):
        if args and args[0] is str and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    expected = "a list" if origin is tuple else getattr(origin or hint, "__name__", str(hint))
    shown = "a value" if secret else repr(value)  # never echo a secret
    raise ConfigError(f"{key}: expected {expected}, got {shown} ({type(value).__name__})")
