"""Find an engine class by name, importing only what is allowed.

Registered names (short names, our dotted names and the dotted names of the
original system) map straight to classes.  Any other name is a dotted path
``package.module.Class`` that is imported only when it starts with one of the
``allowed_prefixes``: a domain config comes from callers over the wire, and
importing a name they choose would let them run any module's import-time
code.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Sequence

from epum.engines.adapter import REQUIRED, adapt, is_engine_like
from epum.engines.base import Engine
from epum.engines.multisite import MultiSiteOverflowEngine
from epum.engines.needy import NeedyEngine
from epum.engines.sensor import SensorEngine
from epum.engines.simplest import SimplestEngine
from epum.errors import BadRequestError

log = logging.getLogger(__name__)

#: The engine a domain gets when its config names none.
DEFAULT_ENGINE = "simplest"

#: Every name an engine is known by, to its class.
REGISTRY: dict[str, type[Engine]] = {
    "simplest": SimplestEngine,
    "needy": NeedyEngine,
    "sensor": SensorEngine,
    "multisite": MultiSiteOverflowEngine,
    "epum.engines.simplest.SimplestEngine": SimplestEngine,
    "epum.engines.needy.NeedyEngine": NeedyEngine,
    "epum.engines.sensor.SensorEngine": SensorEngine,
    "epum.engines.multisite.MultiSiteOverflowEngine": MultiSiteOverflowEngine,
    # The original system's names, used by existing deployments.
    "epu.decisionengine.impls.simplest.SimplestEngine": SimplestEngine,
    "epu.decisionengine.impls.needy.NeedyEngine": NeedyEngine,
    "epu.decisionengine.impls.sensor.SensorEngine": SensorEngine,
    "epu.decisionengine.impls.phantom_multi_site_overflow.PhantomMultiSiteOverflowEngine": (
        MultiSiteOverflowEngine
    ),
}


#: The short names, offered in refusals.
_SHORT = ("multisite", "needy", "sensor", "simplest")


def _allowed(name: str, prefixes: Sequence[str]) -> bool:
    """True if ``name`` lies under one of the module ``prefixes``.

    A prefix is a module path; with or without its trailing dot it matches
    only whole path segments ("corp.engines" allows "corp.engines.x.Y" but
    not "corp.enginesevil.Y").
    """
    for prefix in prefixes:
        base = prefix.strip().rstrip(".")
        if base and name.startswith(base + "."):
            return True
    return False


def load_engine_class(name: str | None, allowed_prefixes: Sequence[str] = ()) -> type[Engine]:
    """The engine class ``name`` denotes; the default engine for an empty name.

    Raises ``BadRequestError`` naming the engine when the name is not
    registered and outside ``allowed_prefixes`` (nothing is imported then),
    when its module cannot be imported or lacks the class, or when the class
    is neither a concrete ``Engine`` subclass nor a plain class with the
    engine methods (which is wrapped, see ``epum.engines.adapter``).
    """
    if not name:
        return REGISTRY[DEFAULT_ENGINE]
    if not isinstance(name, str):
        raise BadRequestError(f"engine_class must be a string, not {name!r}")
    if name in REGISTRY:
        return REGISTRY[name]
    module_name, _, class_name = name.rpartition(".")
    if not module_name or not all(part.isidentifier() for part in name.split(".")):
        raise BadRequestError(f"unknown engine {name!r}: not a registered name")
    if not _allowed(name, allowed_prefixes):
        raise BadRequestError(
            f"general.engine_class {name!r} is not a registered engine and not under an"
            f" allowed prefix; use a registered name ({', '.join(sorted(_SHORT))}) or add"
            " its package to allowed_engine_prefixes in the service's epumanagement config"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # an allowed module that fails to import is a bad name too
        raise BadRequestError(
            f"engine {name!r}: cannot import {module_name}: {type(e).__name__}: {e}"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise BadRequestError(f"engine {name!r}: module {module_name} has no {class_name}")
    if inspect.isclass(cls) and not issubclass(cls, Engine) and is_engine_like(cls):
        log.info("loaded plain engine class %s from an allowed prefix", name)
        return adapt(cls)
    if not (inspect.isclass(cls) and issubclass(cls, Engine)):
        raise BadRequestError(
            f"engine {name!r} is not an Engine subclass nor a class with"
            f" {' and '.join(REQUIRED)} methods"
        )
    if inspect.isabstract(cls):
        raise BadRequestError(f"engine {name!r} is abstract")
    log.info("loaded engine %s from an allowed prefix", name)
    return cls
