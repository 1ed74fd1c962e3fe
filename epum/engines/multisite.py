"""The multi-site overflow engine: fill the best-ranked cloud first, then overflow.

The original's last format (PhantomMultiSiteOverflowEngine): bounds and
sensor scaling for the whole domain, a ranked list of clouds, and the sites'
capacities learnt from launch failures (see ``epum.engines.capacity``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from epum.engines import scaling
from epum.engines.base import EngineControl
from epum.engines.capacity import DEFAULT_FAILURE_THRESHOLD, DEFAULT_RETRY_PERIOD, SiteCapacity
from epum.engines.common import aim, clock_time, explain, healthy_live, judge, pick_victims
from epum.engines.confcheck import get_int, get_number, get_str, get_str_list, require_mapping
from epum.engines.configured import ConfiguredEngine
from epum.engines.scaling import Cooldown, ScalingConf
from epum.errors import BadRequestError
from epum.instances import DomainState, Instance
from epum.states import DecisionEngineState, InstanceState

#: A cloud ``size`` meaning "no limit".
UNLIMITED = -1

CONFIG_DOC = f"""\
MultiSiteOverflowEngine keeps between minimum_vms and maximum_vms instances
over several clouds: the best-ranked cloud is filled first, up to its size,
and the rest overflows to the next one.  Shrinking takes instances from the
worst-ranked cloud first.

minimum_vms (integer >= 0, required): the fewest instances.
maximum_vms (integer >= 0, default no limit): the most instances.
domain_desired_size (integer >= 0): the older format; means minimum_vms =
    maximum_vms = that number (not together with minimum_vms/maximum_vms).
dtname (string, required): the deployable type to launch.
clouds (non-empty list, required): [{{site_name, size, rank}}]: site_name
    (string, unique), size (integer; -1 means no limit), rank (integers
    1..n, each once; 1 is filled first), allocation (string, optional).
    Reconfiguring clouds keeps the instances of a site that stays; a site
    whose size is lowered loses its newest instances first; instances of a
    site no longer listed are terminated (and replaced elsewhere as needed).
iaas_allocation (string, optional): the allocation on every cloud.
terminate (instance id, or a list of them): terminate these now.  They stop
    counting at once, so the domain is refilled to its minimum.
{scaling.CONFIG_DOC}
failure_threshold (integer >= 1, default {DEFAULT_FAILURE_THRESHOLD}): when a
    site has at least this many FAILED instances and a new failure comes
    without its healthy count growing, its capacity is taken to be the
    instances it holds, and nothing more is launched there (the original's
    rule).
failure_retry_period (seconds >= 0, default {DEFAULT_RETRY_PERIOD:g}): a
    learnt capacity is forgotten this long after it was learnt, so the site
    is tried again (the original kept it until the next failure).
The engine is DEVIATING when the clouds cannot hold the minimum."""


@dataclass(frozen=True)
class Cloud:
    """One site the domain may use."""

    site_name: str
    size: int
    rank: int
    allocation: str | None

    def room(self, count: int, capacity: int | None) -> int | None:
        """How many more instances fit beside ``count``; None for no limit."""
        limits = [n for n in (self.size if self.size >= 0 else None, capacity) if n is not None]
        return max(0, min(limits) - count) if limits else None


@dataclass(frozen=True)
class MultiSiteConf:
    """The checked config of a multi-site overflow engine."""

    minimum: int
    maximum: int | None
    dtname: str
    clouds: tuple[Cloud, ...]
    terminate: tuple[str, ...]
    scaling: ScalingConf
    failure_threshold: int
    retry_period: float

    @classmethod
    def parse(cls, conf: Mapping[str, Any]) -> MultiSiteConf:
        """Check ``conf``; raise ``BadRequestError`` naming the first bad key."""
        conf = require_mapping(conf)
        desired = get_int(conf, "domain_desired_size", minimum=0)
        if desired is not None:
            given = [k for k in ("minimum_vms", "maximum_vms") if conf.get(k) is not None]
            if given:
                raise BadRequestError(
                    f"domain_desired_size (the older format) cannot go with {', '.join(given)};"
                    " set domain_desired_size to null or drop it"
                )
            minimum, maximum = desired, desired
        else:
            minimum = get_int(conf, "minimum_vms", required=True, minimum=0)
            maximum = get_int(conf, "maximum_vms", minimum=0)
        return cls(
            minimum=minimum,
            maximum=maximum,
            dtname=get_str(conf, "dtname", required=True),
            clouds=_parse_clouds(conf.get("clouds"), get_str(conf, "iaas_allocation")),
            terminate=tuple(get_str_list(conf, "terminate")),
            scaling=ScalingConf.parse(conf),
            failure_threshold=get_int(
                conf, "failure_threshold", default=DEFAULT_FAILURE_THRESHOLD, minimum=1
            ),
            retry_period=get_number(
                conf, "failure_retry_period", default=DEFAULT_RETRY_PERIOD, minimum=0
            ),
        )

    def summary(self) -> str:
        """The bounds and the sites."""
        sites = [c.site_name for c in self.clouds]
        return f"minimum_vms={self.minimum} maximum_vms={self.maximum} sites={sites}"

    def bound(self, n: int) -> int:
        """``n`` within the bounds (the maximum wins, as in the original)."""
        n = max(n, self.minimum)
        return n if self.maximum is None else min(n, self.maximum)


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
                size=get_int(entry, "size", required=True, minimum=UNLIMITED),
                rank=get_int(entry, "rank", required=True),
                allocation=get_str(entry, "allocation", default=allocation),
            )
        except BadRequestError as e:
            raise BadRequestError(f"{where}.{e}") from None
        if any(c.site_name == cloud.site_name for c in clouds):
            raise BadRequestError(f"{where}.site_name {cloud.site_name!r} is listed twice")
        clouds.append(cloud)
    ranks = sorted(c.rank for c in clouds)
    if ranks != list(range(1, len(clouds) + 1)):
        raise BadRequestError(
            f"clouds ranks must be 1..{len(clouds)}, each once (the original's rule), not {ranks}"
        )
    return tuple(sorted(clouds, key=lambda c: c.rank))


class MultiSiteOverflowEngine(ConfiguredEngine[MultiSiteConf]):
    """Fills clouds in rank order, learning full sites; see ``get_config_doc``.

    A new config keeps the instances of the sites that stay in ``clouds``.
    """

    Conf = MultiSiteConf
    CONFIG_DOC = CONFIG_DOC

    def __init__(self) -> None:
        super().__init__()
        self.cooldown = Cooldown()
        self.capacity: dict[str, SiteCapacity] = {}

    @classmethod
    def sites(cls, conf: dict[str, Any]) -> list[str]:
        """Every cloud's ``site_name``."""
        return [cloud.site_name for cloud in MultiSiteConf.parse(conf).clouds]

    def site_capacity(self, site: str, state: DomainState, healthy: int) -> int | None:
        """The capacity learnt for ``site`` (None: not known to be full)."""
        conf = self.current_conf()
        tracker = self.capacity.setdefault(site, SiteCapacity())
        failed = sum(
            1
            for i in state.instances.values()
            if i.site == site and i.state == InstanceState.FAILED
        )
        return tracker.update(failed, healthy, state.now, conf.failure_threshold, conf.retry_period)

    def decide(self, control: EngineControl, state: DomainState) -> None:
        """Drop what must go, then aim for the bounded size, best site first."""
        conf = self.current_conf()
        live = healthy_live(control, state, self.tracker, self.log)
        asked = [i for i in live if i.instance_id in conf.terminate]
        self.tracker.destroy(control, asked, "named in terminate", self.log)
        by_site: dict[str, list[Instance]] = {c.site_name: [] for c in conf.clouds}
        unlisted = []
        for inst in live:
            if inst in asked:
                continue
            by_site.get(inst.site, unlisted).append(inst)
        self.tracker.destroy(control, unlisted, "site not in clouds", self.log)
        caps = {
            c.site_name: self.site_capacity(c.site_name, state, len(by_site[c.site_name]))
            for c in conf.clouds
        }
        shrunk = False
        for cloud in conf.clouds:
            room = cloud.room(0, None)
            over = len(by_site[cloud.site_name]) - room if room is not None else 0
            if over > 0:
                shrunk = True
                self._drop(control, by_site, cloud.site_name, over, "site above its size")
        total = sum(len(v) for v in by_site.values())
        step = 0
        if not shrunk:
            counted = [i for insts in by_site.values() for i in insts]
            step = scaling.decide_step(
                control, self.cooldown, conf.scaling, state, counted, conf.bound, True
            )
            if step:
                self.log.info("%s: scaling by %+d", conf.scaling.metric, step)
        wanted = conf.bound(total + step)
        for cloud in reversed(conf.clouds):
            if total <= wanted:
                break
            total -= self._drop(
                control, by_site, cloud.site_name, total - wanted, "domain above its size"
            )
        aim(control, wanted, counted=total, minimum=conf.minimum, maximum=conf.maximum)
        short = wanted - total
        for cloud in conf.clouds:
            if short <= 0:
                break
            room = cloud.room(len(by_site[cloud.site_name]), caps[cloud.site_name])
            count = short if room is None else min(short, room)
            if count > 0:
                self.log.info("asking for %d more on %s", count, cloud.site_name)
                free = "no limit" if room is None else f"room for {room}"
                explain(
                    control,
                    "launch",
                    f"{total} instances, {wanted} wanted; {cloud.site_name}: the best-ranked"
                    f" cloud with room (rank {cloud.rank}, {free})",
                )
                control.launch(conf.dtname, cloud.site_name, cloud.allocation, count=count)
                short -= count
            else:
                self._explain_full(control, cloud, caps[cloud.site_name])
        live = [i for insts in by_site.values() for i in insts]
        if short > 0:
            self.log.warning("the clouds cannot take %d more instance(s) now", short)
            explain(control, "site_full", f"no launch of {short} more: every cloud is full")
            self.de_state = DecisionEngineState.DEVIATING
        else:
            self.de_state = judge(live, wanted, state.instances.values())

    def _explain_full(self, control: EngineControl, cloud: Cloud, capacity: int | None) -> None:
        """Tell the decision log why nothing was launched on a full cloud."""
        learnt = self.capacity.get(cloud.site_name)
        if capacity is not None and learnt is not None and learnt.learnt_at is not None:
            retry = learnt.learnt_at + self.current_conf().retry_period
            explain(
                control,
                "retry_pacing",
                f"{cloud.site_name} skipped: judged full at {capacity} after launch failures"
                f" ({clock_time(learnt.learnt_at)}); tried again from {clock_time(retry)}",
            )
        else:
            explain(control, "site_full", f"{cloud.site_name} skipped: full at size {cloud.size}")

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
        self.tracker.destroy(control, victims, why, self.log)
        gone = {i.instance_id for i in victims}
        by_site[site] = [i for i in by_site[site] if i.instance_id not in gone]
        return len(victims)
