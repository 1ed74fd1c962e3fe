"""What a decider pass reads of a domain, read again only when the domain changed.

``read_inputs`` reads a domain's removal mark, config, engine_conf version,
records and sensor data into a ``DomainInputs``, stamped with the store's
``DomainStore.change_stamp``.  Given the inputs kept from an earlier pass
and an equal stamp, it returns those very inputs with no read at all: the
store promises that nothing of the domain changed in between.  A store
that cannot tell (stamp None) is read every time.  The kept inputs are
shared between passes, so nobody may change them.

The settled rule: a domain is *settled* when its last decision, on the
inputs it keeps, was quiet (``quiet_decision``): its engine's own class
promises ``Engine.decides_on_inputs_only``, the pass was not a dry run,
the engine asked for nothing and explained nothing, the decider logged
nothing for it (no lifecycle event, no decision entry, no reading), and no
record awaits an answer the control would re-send once time passes
(``epum.control.awaits_answer``).  The decider skips a settled domain, at
timed passes too, until its change stamp moves; that pass would have done
exactly what the last one did, nothing: the engine's promise says it would
decide the same on the same inputs whatever the time, the control would
re-send nothing, the lifecycle events compare equal records, and the
decision entry of a quiet pass at its target is none.  Everything that
does depend on time acts at every pass as before: an engine without the
promise (cooldowns, reading ages, retry pacing), re-sends of unanswered
launches and terminations, and health, which the doctor judges and writes
into the records (so the stamp moves).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from epum.control import awaits_answer
from epum.decisions import PassNotes
from epum.engines.base import Engine
from epum.instances import Instance
from epum.store.base import DomainStore


@dataclass
class DomainInputs:
    """One read of a domain, as a pass decides on it (see the module).

    ``removed``: the removal mark (nothing else is read for a marked domain);
    ``config``: every section; ``engine_conf`` and ``conf_version``: that section
    and its version, read together;
    ``settled``: the last decision on these inputs was quiet.
    """

    stamp: Hashable | None
    removed: bool
    config: dict[str, Any] = field(default_factory=dict)
    engine_conf: dict[str, Any] = field(default_factory=dict)
    conf_version: int = 0
    instances: list[Instance] = field(default_factory=list)
    sensor_data: dict[str, Any] = field(default_factory=dict)
    settled: bool = False

    def unchanged(self, stamp: Hashable | None) -> bool:
        """True if ``stamp`` (just taken) says the domain did not change since this read."""
        return stamp is not None and stamp == self.stamp


def read_inputs(
    domain: DomainStore, stamp: Hashable | None, kept: DomainInputs | None
) -> DomainInputs:
    """``kept`` if ``stamp`` (taken before this call) equals its stamp, else a fresh read."""
    if kept is not None and kept.unchanged(stamp):
        return kept
    if domain.is_removed():
        return DomainInputs(stamp, removed=True)
    config = domain.get_all_config()
    engine_conf, version = domain.get_versioned_config("engine_conf")
    return DomainInputs(
        stamp,
        removed=False,
        config=config,
        engine_conf=engine_conf,
        conf_version=version,
        instances=domain.get_instances(),
        sensor_data=domain.get_domain_sensor_data(),
    )


def quiet_decision(
    engine: Engine,
    notes: PassNotes,
    entries: list[dict[str, Any]],
    instances: Iterable[Instance],
    dry_run: bool,
) -> bool:
    """True if a decision that left ``notes`` and logged ``entries`` settles its domain
    (the settled rule of the module)."""
    return (
        type(engine).__dict__.get("decides_on_inputs_only") is True
        and not dry_run
        and not (notes.actions or notes.reasons or notes.events)
        and not entries
        and not any(awaits_answer(i) for i in instances)
    )
