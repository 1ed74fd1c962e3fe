"""Plain engine classes, as the original loaded them, wrapped as epum engines.

The original imported any class with the engine methods; custom engines of
existing deployments are such plain classes (often subclasses of the
original's ``Engine``, which epum does not ship).  ``adapt`` wraps one in an
``Engine`` subclass so the decider and the config checks treat it like ours:

- ``initialize``/``decide`` are required (callable), ``reconfigure`` and
  ``dying`` optional (an absent ``reconfigure`` refuses reconfiguration, an
  absent ``dying`` does nothing);
- its ``de_state`` attribute, if it sets one, is the engine's state;
- its ``validate_config`` (class or static method) is called when present;
  the ``ValueError``/``KeyError``/``TypeError`` the original's engines
  raised become ``BadRequestError`` naming the engine;
- ``get_config_doc`` comes from the class when it has one, else its
  docstring.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from epum.engines.base import Engine, EngineControl
from epum.errors import BadRequestError
from epum.instances import DomainState

REQUIRED = ("initialize", "decide")


def is_engine_like(cls: type) -> bool:
    """True if ``cls`` has the engine methods a decider needs."""
    return all(callable(getattr(cls, name, None)) for name in REQUIRED)


@functools.cache
def adapt(cls: type) -> type[Engine]:
    """An ``Engine`` subclass that drives an instance of the plain class ``cls``."""
    name = f"{cls.__module__}.{cls.__qualname__}"

    class Adapted(Engine):
        __doc__ = cls.__doc__
        wrapped = cls

        def __init__(self) -> None:
            self.inner = cls()

        @property
        def de_state(self) -> str:  # type: ignore[override]
            """The wrapped engine's state (PENDING if it keeps none)."""
            return getattr(self.inner, "de_state", Engine.de_state)

        @property
        def log(self) -> logging.Logger | logging.LoggerAdapter:  # type: ignore[override]
            """The logger the decider gave, handed on to the wrapped engine."""
            return getattr(self, "_log", Engine.log)

        @log.setter
        def log(self, value: logging.Logger | logging.LoggerAdapter) -> None:
            self._log = value

        def initialize(
            self, control: EngineControl, state: DomainState, conf: dict[str, Any]
        ) -> None:
            """Hand the config to the wrapped engine."""
            self.inner.initialize(control, state, conf)

        def decide(self, control: EngineControl, state: DomainState) -> None:
            """Let the wrapped engine decide."""
            self.inner.decide(control, state)

        def reconfigure(self, control: EngineControl, newconf: dict[str, Any]) -> None:
            """Hand the new config on, if the wrapped engine takes one."""
            if not callable(getattr(self.inner, "reconfigure", None)):
                super().reconfigure(control, newconf)
            self.inner.reconfigure(control, newconf)

        def dying(self) -> None:
            """Tell the wrapped engine, if it listens."""
            if callable(getattr(self.inner, "dying", None)):
                self.inner.dying()

        @classmethod
        def validate_config(cls_, conf: dict[str, Any]) -> None:
            """The wrapped class's own check, its errors made BadRequestError."""
            check = getattr(cls, "validate_config", None)
            if not callable(check):
                return
            try:
                check(conf)
            except BadRequestError:
                raise
            except (ValueError, KeyError, TypeError) as e:
                raise BadRequestError(f"engine {name} refused its engine_conf: {e}") from None

        @classmethod
        def get_config_doc(cls_) -> str:
            """The wrapped class's documentation."""
            doc = getattr(cls, "get_config_doc", None)
            return doc() if callable(doc) else (cls.__doc__ or "").strip()

    Adapted.__name__ = Adapted.__qualname__ = cls.__name__
    Adapted.__module__ = cls.__module__
    return Adapted
