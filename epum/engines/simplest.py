"""The simplest engine: keep exactly ``preserve_n`` instances."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from epum.engines.base import EngineControl
from epum.engines.confcheck import get_int, get_str, named_site, require_mapping
from epum.engines.configured import ConfiguredEngine
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


@dataclass(frozen=True)
class SimplestConf:
    """A simplest engine's config, checked."""

    preserve_n: int
    spec: LaunchSpec

    @classmethod
    def parse(cls, conf: Mapping[str, Any]) -> SimplestConf:
        """The config of ``conf``; ``BadRequestError`` naming the first bad key."""
        conf = require_mapping(conf)
        default = DEFAULT_SPEC
        return cls(
            preserve_n=get_int(conf, "preserve_n", required=True, minimum=0),
            spec=LaunchSpec(
                deployable_type=get_str(conf, "epuworker_type", default=default.deployable_type),
                site=get_str(conf, "force_site", default=default.site),
                allocation=get_str(conf, "epuworker_allocation", default=default.allocation),
            ),
        )

    def summary(self) -> str:
        """The size kept."""
        return f"preserve_n={self.preserve_n}"


class SimplestEngine(ConfiguredEngine[SimplestConf]):
    """Keeps exactly ``preserve_n`` live instances; see ``get_config_doc``."""

    Conf = SimplestConf
    CONFIG_DOC = CONFIG_DOC
    #: ``keep_size`` looks at the records and the engine's own tracker only.
    decides_on_inputs_only = True

    @classmethod
    def sites(cls, conf: dict[str, Any]) -> list[str]:
        """``force_site``, or the default site."""
        return named_site(conf, "force_site") or [DEFAULT_SPEC.site]

    def decide(self, control: EngineControl, state: DomainState) -> None:
        """Launch or destroy so that ``preserve_n`` instances count."""
        conf = self.current_conf()
        self.de_state = keep_size(
            control, state, self.tracker, conf.preserve_n, conf.spec, logger=self.log
        )
