"""Timeline: what happened to one owner's domains, as readable lines in simulated time.

A ``Timeline`` is a simulation observer: after each tick it compares every
record of the owner's domains (read from the store, so domains being
removed still show) with what it saw last, and writes one line per change:
new instances, state changes, health changes, notifications sent to
subscribers and domains that disappeared.  Instances get short names
(``vm1``, ``vm2``...) in the order they first appear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from epum.sim.stubs import SimClock, SimNotifier
from epum.states import InstanceHealthState
from epum.store.base import EPUMStore


@dataclass
class Seen:
    """The last known state of one instance."""

    name: str
    instance_id: str
    domain_id: str
    state: str
    health: str
    public_ip: str | None
    #: Every health it had, in order (repeats collapsed).
    healths: list[str] = field(default_factory=list)


def short_state(state: str) -> str:
    """``600-RUNNING`` -> ``RUNNING``."""
    return state.split("-", 1)[-1]


class Timeline:
    """Watches ``owner``'s domains in ``store`` and writes a line per change to ``out``."""

    def __init__(
        self,
        store: EPUMStore,
        owner: str,
        clock: SimClock,
        notifier: SimNotifier | None = None,
        out: Callable[[str], None] = print,
    ):
        self.store = store
        self.owner = owner
        self.clock = clock
        self.notifier = notifier
        self.out = out
        self.instances: dict[str, Seen] = {}
        self.domains: set[str] = set()
        self.lines: list[str] = []
        self._notified = 0

    def say(self, text: str) -> None:
        """Write one line stamped with the simulated time."""
        line = f"[t+{self.clock.elapsed:5.0f}s] {text}"
        self.lines.append(line)
        self.out(line)

    def name(self, instance_id: str) -> str:
        """The short name of an instance (its id if never seen)."""
        seen = self.instances.get(instance_id)
        return seen.name if seen else instance_id[:8]

    def __call__(self, now: float) -> None:
        """Observe the store after a tick."""
        present = set()
        for domain_id in sorted(self.store.list_domains_by_owner(self.owner)):
            domain = self.store.get_domain(self.owner, domain_id)
            if domain is None:
                continue
            present.add(domain_id)
            for record in sorted(domain.get_instances(), key=lambda r: r.instance_id):
                self._compare(
                    domain_id, record.instance_id, record.state, record.health, record.public_ip
                )
        for gone in sorted(self.domains - present):
            self.say(f"{gone}: domain is gone")
        self.domains = present
        self._notifications()

    def _compare(
        self, domain_id: str, instance_id: str, state: str, health: str, public_ip: str | None
    ) -> None:
        seen = self.instances.get(instance_id)
        if seen is None:
            name = f"vm{len(self.instances) + 1}"
            seen = Seen(name, instance_id, domain_id, state, health, public_ip, [health])
            self.instances[instance_id] = seen
            self.say(f"{domain_id}: {name} ({instance_id[:8]}) {short_state(state)}")
            return
        if state != seen.state:
            where = f" at {public_ip}" if public_ip and not seen.public_ip else ""
            self.say(
                f"{domain_id}: {seen.name} {short_state(seen.state)} -> {short_state(state)}{where}"
            )
        if health != seen.health and not (
            health == InstanceHealthState.UNKNOWN and state != seen.state
        ):
            self.say(f"{domain_id}: {seen.name} health {seen.health} -> {health}")
        if health != seen.health:
            seen.healths.append(health)
        seen.state, seen.health = state, health
        seen.public_ip = public_ip or seen.public_ip

    def _notifications(self) -> None:
        if self.notifier is None:
            return
        for sent in self.notifier.sent[self._notified :]:
            message = sent.message
            self.say(
                f"{message.get('domain_id')}: told {sent.receiver}.{sent.operation}"
                f" {self.name(message.get('node_id', '?'))} is {short_state(message['state'])}"
            )
        self._notified = len(self.notifier.sent)

    def table(self) -> list[str]:
        """Every instance seen, one row each, in the order they appeared."""
        rows = [("name", "instance id", "domain", "state", "health", "ip")]
        rows.extend(
            (
                s.name,
                s.instance_id[:8],
                s.domain_id,
                short_state(s.state),
                s.health,
                s.public_ip or "-",
            )
            for s in self.instances.values()
        )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
