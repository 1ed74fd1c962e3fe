"""The multi-site overflow engine: fill the best-ranked cloud first, then overflow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from epum.engines.base import Engine, EngineControl
from epum.engines.common import DestroyTracker, failure_streak, healthy_live, judge, pick_victims
from epum.engines.confcheck import get_int, get_number, get_str, require_mapping
from epum.errors import BadRequestError
from epum.instances import DomainState, Instance
from epum.states import DecisionEngineState

#: Why 600 s: a broken site is retried every ten minutes, not every pass.
DEFAULT_RETRY_PERIOD = 600.0

CONFIG_DOC = f"""\
MultiSiteOverflowEngine keeps domain_desired_size instances over several
clouds: the best-ranked cloud is filled first, up to its size, and the rest
overflows to the next one.  Healthy instances are never moved between clouds.

domain_desired_size (integer >= 0, required): how many instances to keep.
dtname (string, required): the deployable type to launch.
clouds (non-empty list, required): [{{site_name, size, rank, allocation}}]
    site_name (string, unique), size (integer >= 0: the most instances on
    that site), rank (integer, lower is better; ties keep list order),
    allocation (string, optional: overrides iaas_allocation for the site).
    Instances on a site no longer listed are terminated.
iaas_allocation (string, optional): the allocation for every site.
failure_threshold (integer >= 1, default 3): a site whose last this-many
    launch outcomes (instances reaching RUNNING, or FAILED/REJECTED, by
    state_time) all failed counts as full: nothing more is launched there.
failure_retry_period (seconds >= 0, default {DEFAULT_RETRY_PERIOD:g}): a failing
    site is tried again once this long has passed since its last failure.
When the domain has too many instances (desired size or a site's size
lowered), unhealthy ones go first, then instances above a site's size, then
the surplus from the worst-ranked site first (newest not-yet-running first).
The engine is DEVIATING when the clouds cannot hold the desired size."""


@dataclass(frozen=True)
class Cloud:
    """One site the domain may use."""

    site_name: str
    size: int
    rank: int
    allocation: str | None


@dataclass(frozen=True)
class MultiSiteConf:
    """The checked config of a multi-site overflow engine."""

    desired: int
    dtname: str
    clouds: tuple[Cloud, ...]
    failure_threshold: int
    retry_period: float

    @classmethod
    def parse(cls, conf: Mapping[str, Any]) -> MultiSiteConf:
        """Check ``conf``; raise ``BadRequestError`` naming the first bad key."""
        conf = require_mapping(conf)
        desired = get_int(conf, "domain_desired_size", required=True, minimum=0)
        dtname = get_str(conf, "dtname", required=True)
        allocation = get_str(conf, "iaas_allocation")
        return cls(
            desired=desired,
            dtname=dtname,
            clouds=_parse_clouds(conf.get("clouds"), allocation),
            failure_threshold=get_int(conf, "failure_threshold", default=3, minimum=1),
            retry_period=get_number(
                conf, "failure_retry_period", default=DEFAULT_RETRY_PERIOD, minimum=0
            ),
        )


def _parse_clouds(value: Any, allocation: str | None) -> tuple[Cloud, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise BadRequestError(f"clouds must be a non-empty list of sites, not {value!r}")
    clouds = []
    for n, entry in enumerate(value):
        where = f"clouds[{n}]"
        if not isinstance(entry, Mapping):
            raise BadRequestError(f"{where} must be a mapping, not {entry!r}")
        try:
            cloud = Cloud(
                site_name=get_str(entry, "site_name", required=True),
                size=get_int(entry, "size", required=True, minimum=0),
                rank=get_int(entry, "rank", required=True),
                allocation=get_str(entry, "allocation", default=allocation),
            )
        except BadRequestError as e:
            raise BadRequestError(f"{where}.{e}") from None
        if any(c.site_name == cloud.site_name for c in clouds):
            raise BadRequestError(f"{where}.site_name {cloud.site_name!r} is listed twice")
        clouds.append(cloud)
    # sorted() is stable, so equal ranks keep their list order
    return tuple(sorted(clouds, key=lambda c: c.rank))


class MultiSiteOverflowEngine(Engine):
    """Fills clouds in rank order, skipping failing ones; see ``get_config_doc``."""

    def __init__(self) -> None:
        self.conf: MultiSiteConf | None = None
        self._tracker = DestroyTracker()

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Raise ``BadRequestError`` naming the first bad key of ``conf``."""
        MultiSiteConf.parse(conf)

    @classmethod
    def sites(cls, conf: dict[str, Any]) -> list[str]:
        """Every cloud's ``site_name``."""
        return [cloud.site_name for cloud in MultiSiteConf.parse(conf).clouds]

    @classmethod
    def get_config_doc(cls) -> str:
        """Every config key of this engine and what it does."""
        return CONFIG_DOC

    def initialize(self, control: EngineControl, state: DomainState, conf: dict[str, Any]) -> None:
        """Take the config (validated again here)."""
        self.conf = MultiSiteConf.parse(conf)

    def reconfigure(self, control: EngineControl, newconf: dict[str, Any]) -> None:
        """Take the merged config; the next ``decide`` acts on it."""
        self.conf = MultiSiteConf.parse(newconf)
        self.log.info("reconfigured: domain_desired_size=%d", self.conf.desired)

    def dying(self) -> None:
        """Forget what the engine was tracking."""
        self._tracker.forget()

    def failing_sites(self, state: DomainState) -> set[str]:
        """The sites that count as full because their launches keep failing."""
        conf = self.conf
        failing = set()
        for cloud in conf.clouds:
            at_site = [i for i in state.instances.values() if i.site == cloud.site_name]
            streak, latest = failure_streak(at_site)
            if streak >= conf.failure_threshold and state.now < latest + conf.retry_period:
                failing.add(cloud.site_name)
        return failing

    def decide(self, control: EngineControl, state: DomainState) -> None:
        """Trim what is too much, worst site first; fill what lacks, best site first."""
        conf = self.conf
        if conf is None:
            raise RuntimeError("MultiSiteOverflowEngine.decide called before initialize")
        live = healthy_live(control, state, self._tracker, self.log)
        by_site: dict[str, list[Instance]] = {c.site_name: [] for c in conf.clouds}
        unlisted = []
        for inst in live:
            if inst.site in by_site:
                by_site[inst.site].append(inst)
            else:
                unlisted.append(inst)
        self._tracker.destroy(control, unlisted, "site not in clouds", self.log)
        for cloud in conf.clouds:
            over = len(by_site[cloud.site_name]) - cloud.size
            self._drop(control, by_site, cloud.site_name, over, "site above its size")
        excess = sum(len(v) for v in by_site.values()) - conf.desired
        for cloud in reversed(conf.clouds):
            excess -= self._drop(
                control, by_site, cloud.site_name, excess, "domain above its desired size"
            )
        live = [i for insts in by_site.values() for i in insts]
        short = conf.desired - len(live)
        failing = self.failing_sites(state) if short > 0 else set()
        for cloud in conf.clouds:
            if short <= 0:
                break
            if cloud.site_name in failing:
                self.log.warning("site %s keeps failing launches; overflowing", cloud.site_name)
                continue
            count = min(short, cloud.size - len(by_site[cloud.site_name]))
            if count > 0:
                self.log.info("asking for %d more on %s", count, cloud.site_name)
                control.launch(conf.dtname, cloud.site_name, cloud.allocation, count=count)
                short -= count
        if short > 0:
            self.log.warning("the clouds cannot take %d more instance(s) now", short)
            self.de_state = DecisionEngineState.DEVIATING
        else:
            self.de_state = judge(live, conf.desired, state.instances.values())

    def _drop(
        self,
        control: EngineControl,
        by_site: dict[str, list[Instance]],
        site: str,
        count: int,
        why: str,
    ) -> int:
        """Destroy ``count`` instances of ``site`` (most expendable first); how many went."""
        victims = pick_victims(by_site[site], count)
        self._tracker.destroy(control, victims, why, self.log)
        gone = {i.instance_id for i in victims}
        by_site[site] = [i for i in by_site[site] if i.instance_id not in gone]
        return len(victims)
