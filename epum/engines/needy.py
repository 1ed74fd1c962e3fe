"""The needy engine: keep ``preserve_n`` instances for a client that says how many.

A client such as a process dispatcher reconfigures ``preserve_n`` as its need
changes and names, in ``retirable_nodes``, the instances it can spare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from epum.engines import uniques
from epum.engines.base import EngineControl
from epum.engines.confcheck import get_int, get_str_list, require_mapping
from epum.engines.configured import ConfiguredEngine
from epum.engines.keeper import LaunchSpec, keep_size, missing_launch_keys
from epum.engines.uniques import UniqueValues
from epum.errors import BadRequestError
from epum.instances import DomainState

CONFIG_DOC = f"""\
NeedyEngine keeps exactly preserve_n live instances, as a client asks.

preserve_n (integer >= 0, default 0): how many instances to keep.  Unhealthy
    instances are destroyed and replaced.
deployable_type (string): the deployable type to launch.
iaas_site (string): the site to launch on; the service-wide
    needy_default_iaas_site when absent.  deployable_type and iaas_site are
    required once preserve_n is above 0 (the original failed at launch
    time without them; epum refuses the config instead).
iaas_allocation (string, optional): the allocation; the service-wide
    needy_default_iaas_allocation when absent.
retirable_nodes (list of instance ids, or a comma-separated string): the
    instances the client can spare.  When the domain has more instances than
    preserve_n, these are terminated first (then the newest instances not yet
    running, then the newest running ones).  A retirable instance is not
    replaced while the domain is at its size: the client names idle instances
    here, and replacing them would only churn.
{uniques.CONFIG_DOC}
    When every value is held, nothing more is launched (the engine reports
    DEVIATING) until one is freed, as in the original."""

#: LaunchSpec fields and the keys that give them.
LAUNCH_KEYS = {"deployable_type": "deployable_type", "site": "iaas_site"}


@dataclass(frozen=True)
class NeedyConf:
    """The checked config of a needy engine."""

    preserve_n: int
    spec: LaunchSpec
    retirable: tuple[str, ...]
    uniques: UniqueValues | None

    @classmethod
    def parse(cls, conf: Mapping[str, Any]) -> NeedyConf:
        """Check ``conf``; raise ``BadRequestError`` naming the first bad key."""
        conf = require_mapping(conf)
        parsed = cls(
            preserve_n=get_int(conf, "preserve_n", default=0, minimum=0),
            spec=LaunchSpec.from_iaas_keys(conf),
            retirable=tuple(get_str_list(conf, "retirable_nodes")),
            uniques=UniqueValues.from_conf(conf),
        )
        missing = missing_launch_keys(parsed.spec, LAUNCH_KEYS)
        if parsed.preserve_n > 0 and missing:
            raise BadRequestError(
                f"{' and '.join(missing)} required to launch (preserve_n is"
                f" {parsed.preserve_n}); give them in engine_conf (iaas_site may also"
                " come from the service's needy_default_iaas_site)"
            )
        return parsed

    def summary(self) -> str:
        """The size kept and the instances retired first."""
        return f"preserve_n={self.preserve_n} retirable={list(self.retirable)}"


class NeedyEngine(ConfiguredEngine[NeedyConf]):
    """Keeps ``preserve_n`` live instances, retiring the spare ones first."""

    Conf = NeedyConf
    CONFIG_DOC = CONFIG_DOC
    #: ``keep_size`` looks at the records and the engine's own tracker only.
    decides_on_inputs_only = True
    #: ``iaas_site``, when the config (or the service default) names one.
    SITE_KEY = "iaas_site"

    def decide(self, control: EngineControl, state: DomainState) -> None:
        """Launch or destroy so that ``preserve_n`` instances count."""
        conf = self.current_conf()
        self.de_state = keep_size(
            control,
            state,
            self.tracker,
            conf.preserve_n,
            conf.spec,
            retirable=conf.retirable,
            uniques=conf.uniques,
            logger=self.log,
        )
