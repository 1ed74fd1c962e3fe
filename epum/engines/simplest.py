"""The simplest engine: keep exactly ``preserve_n`` instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from epum.engines.base import Engine, EngineControl
from epum.engines.common import DestroyTracker
from epum.engines.confcheck import get_int, get_str, named_site, require_mapping
from epum.engines.keeper import LaunchSpec, keep_size
from epum.instances import DomainState

CONFIG_DOC = """\
SimplestEngine keeps exactly preserve_n live instances of one deployable type.

preserve_n (integer >= 0, required): how many instances to keep.  Unhealthy
    instances are destroyed and replaced; when there are too many, the newest
    instances not yet running go first, then the newest running ones.
epuworker_type (string, default "epu_work_consumer"): the deployable type.
force_site (string, default "ec2-east"): the site to launch on.
epuworker_allocation (string, default "small"): the allocation (size).
The defaults are the original engine's, so a config with only preserve_n
launches what it launched; with a DTRS, add_domain refuses a site the DTRS
does not know, so a default that does not fit is caught before anything is
stored."""

#: The original engine's launch defaults.
DEFAULT_SPEC = LaunchSpec(deployable_type="epu_work_consumer", site="ec2-east", allocation="small")


class SimplestEngine(Engine):
    """Keeps exactly ``preserve_n`` live instances; see ``get_config_doc``."""

    def __init__(self) -> None:
        self.preserve_n = 0
        self.spec = LaunchSpec()
        self._tracker = DestroyTracker()

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Raise ``BadRequestError`` naming the first bad key of ``conf``."""
        cls._parse(conf)

    @classmethod
    def sites(cls, conf: dict[str, Any]) -> list[str]:
        """``force_site``, or the default site."""
        return named_site(conf, "force_site") or [DEFAULT_SPEC.site]

    @classmethod
    def get_config_doc(cls) -> str:
        """Every config key of this engine and what it does."""
        return CONFIG_DOC

    @staticmethod
    def _parse(conf: Mapping[str, Any]) -> tuple[int, LaunchSpec]:
        conf = require_mapping(conf)
        preserve_n = get_int(conf, "preserve_n", required=True, minimum=0)
        spec = LaunchSpec(
            deployable_type=get_str(conf, "epuworker_type", default=DEFAULT_SPEC.deployable_type),
            site=get_str(conf, "force_site", default=DEFAULT_SPEC.site),
            allocation=get_str(conf, "epuworker_allocation", default=DEFAULT_SPEC.allocation),
        )
        return preserve_n, spec

    def initialize(self, control: EngineControl, state: DomainState, conf: dict[str, Any]) -> None:
        """Take the config (validated again here)."""
        self.preserve_n, self.spec = self._parse(conf)

    def reconfigure(self, control: EngineControl, newconf: dict[str, Any]) -> None:
        """Take the merged config; the next ``decide`` acts on it."""
        self.preserve_n, self.spec = self._parse(newconf)
        self.log.info("reconfigured: preserve_n=%d", self.preserve_n)

    def decide(self, control: EngineControl, state: DomainState) -> None:
        """Launch or destroy so that ``preserve_n`` instances count."""
        self.de_state = keep_size(
            control, state, self._tracker, self.preserve_n, self.spec, logger=self.log
        )

    def dying(self) -> None:
        """Forget what the engine was tracking."""
        self._tracker.forget()
