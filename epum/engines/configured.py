"""Engines whose config parses into one checked object: the shared half of the built-ins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from epum.engines.base import Engine, EngineControl
from epum.engines.common import DestroyTracker
from epum.engines.confcheck import named_site
from epum.instances import DomainState


class ParsedConf(Protocol):
    """An engine's config parsed into one checked, immutable object."""

    @classmethod
    def parse(cls, conf: Mapping[str, Any]) -> Any:
        """The parsed config; ``BadRequestError`` naming the first bad key."""

    def summary(self) -> str:
        """A short line of the settings that matter, for the reconfigure log."""


ConfT = TypeVar("ConfT", bound=ParsedConf)


class ConfiguredEngine(Engine, Generic[ConfT]):
    """An engine whose whole config is one parsed object, ``self.conf``.

    Subclasses name their parsed config class ``Conf`` and their
    ``CONFIG_DOC``; validation, the documentation, ``initialize`` and
    ``reconfigure`` follow from them.  ``SITE_KEY`` names the engine_conf
    key holding the one site the engine launches on (``sites`` reports it);
    ``configured()`` runs after every new config; ``tracker`` remembers
    what the engine asked to destroy (forgotten when the domain dies).
    """

    Conf: ClassVar[type[ParsedConf]]
    CONFIG_DOC: ClassVar[str] = ""
    SITE_KEY: ClassVar[str | None] = None

    conf: ConfT | None = None

    def __init__(self) -> None:
        self.tracker = DestroyTracker()

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Raise ``BadRequestError`` naming the first bad key of ``conf``."""
        cls.Conf.parse(conf)

    @classmethod
    def sites(cls, conf: dict[str, Any]) -> list[str]:
        """The site under ``SITE_KEY``, when the config names one."""
        return named_site(conf, cls.SITE_KEY) if cls.SITE_KEY else []

    @classmethod
    def get_config_doc(cls) -> str:
        """Every config key of this engine and what it does."""
        return cls.CONFIG_DOC

    def initialize(self, control: EngineControl, state: DomainState, conf: dict[str, Any]) -> None:
        """Take the config (validated again here)."""
        self.conf = self.Conf.parse(conf)
        self.configured()

    def reconfigure(self, control: EngineControl, newconf: dict[str, Any]) -> None:
        """Take the merged config; the next ``decide`` acts on it."""
        self.conf = self.Conf.parse(newconf)
        self.log.info("reconfigured: %s", self.conf.summary())
        self.configured()

    def dying(self) -> None:
        """Forget what the engine was tracking."""
        self.tracker.forget()

    def configured(self) -> None:
        """Called after each new config (default: nothing)."""

    def current_conf(self) -> ConfT:
        """``self.conf``; RuntimeError when ``decide`` runs before ``initialize``."""
        if self.conf is None:
            raise RuntimeError(f"{type(self).__name__}.decide called before initialize")
        return self.conf
