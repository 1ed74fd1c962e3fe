"""Health rules: which running instances are out of contact, missing or zombies.

``HealthMonitor`` judges one domain's records against its ``health`` config
and the time; it never touches the store or the network.  The doctor
(``epum.doctor``) writes its verdicts and sends the agent requests it asks
for.  ``heartbeat_write_due`` is the reactor's half of the bargain: it bounds
how often a heartbeat that changes nothing else costs a store write, and the
missing rule allows exactly that much slack.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from epum.errors import BadRequestError
from epum.instances import Instance
from epum.states import InstanceHealthState, InstanceState
from epum.values import as_bool, as_number

#: The reactor writes ``last_heard`` only when the stored one is older than
#: this fraction of ``missing_timeout``: a quarter keeps writes to a few per
#: timeout per instance, and costs the missing rule a quarter more patience.
HEARTBEAT_WRITE_FRACTION = 0.25


def heartbeat_write_due(
    stored_last_heard: float | None, now: float, missing_timeout: float
) -> bool:
    """True when a heartbeat at ``now`` must be written although nothing else changed.

    That is when no time is stored yet, or the stored one is more than
    ``HEARTBEAT_WRITE_FRACTION * missing_timeout`` seconds before ``now``.
    So the stored ``last_heard`` lags the last heartbeat by at most that much.
    """
    if stored_last_heard is None:
        return True
    return now - stored_last_heard > HEARTBEAT_WRITE_FRACTION * missing_timeout


@dataclass(frozen=True)
class HealthConfig:
    """A domain's ``health`` section (seconds), defaults as the original deployments use.

    - ``monitor_health``: off by default: a domain whose agents do not
      heartbeat must not see its instances declared missing.
    - ``boot_timeout``: five minutes for a RUNNING instance's agent to send
      its first heartbeat (booting and contextualizing take that long).
    - ``missing_timeout``: two minutes of silence before the agent is asked
      for a heartbeat (agents heartbeat every few seconds).
    - ``really_missing_timeout``: fifteen seconds for the agent to answer.
    - ``zombie_seconds``: two minutes for a terminating instance to go quiet.
    """

    monitor_health: bool = False
    boot_timeout: float = 300.0
    missing_timeout: float = 120.0
    really_missing_timeout: float = 15.0
    zombie_seconds: float = 120.0

    @property
    def missing_window(self) -> float:
        """Silence (from the stored ``last_heard``) after which an instance is out of contact.

        ``missing_timeout`` plus the reactor's write slack, so an instance
        that heartbeated within ``missing_timeout`` is never out of contact.
        """
        return self.missing_timeout * (1 + HEARTBEAT_WRITE_FRACTION)

    @classmethod
    def from_section(cls, section: Mapping[str, Any] | None) -> HealthConfig:
        """The config of a stored ``health`` section; missing keys take the defaults.

        Unknown keys are ignored; numeric strings and ``"true"``/``"false"``
        are read as the original system did (see ``epum.values``); a bad
        value raises BadRequestError naming the key.
        """
        section = section or {}
        values: dict[str, Any] = {}
        monitor = section.get("monitor_health", cls.monitor_health)
        values["monitor_health"] = as_bool("health.monitor_health", monitor)
        for key in ("boot_timeout", "missing_timeout", "really_missing_timeout", "zombie_seconds"):
            value = section.get(key, getattr(cls, key))
            seconds = as_number(f"health.{key}", value)
            if seconds < 0:
                raise BadRequestError(f"health.{key} must be a number of seconds, not {value!r}")
            values[key] = seconds
        return cls(**values)


def health_config_of(section: Mapping[str, Any] | None) -> HealthConfig:
    """``HealthConfig.from_section(section)``, built once for each distinct section
    (a heartbeat reads its domain's on every beat)."""
    try:
        key = tuple(sorted(section.items())) if section else ()
        hash(key)
    except TypeError:  # a value that cannot be a key (refused by from_section, or kept)
        return HealthConfig.from_section(section)
    return _health_config(key)


@functools.lru_cache(maxsize=1024)
def _health_config(items: tuple[tuple[str, Any], ...]) -> HealthConfig:
    return HealthConfig.from_section(dict(items))


@dataclass(frozen=True)
class Verdict:
    """What should happen to one instance now.

    ``health`` is its new health (None: leave it); ``ask_agent`` the agent
    address to send ``dump_state`` to once the new health is written (None:
    ask nothing); ``reason`` says why, for the logs.
    """

    instance_id: str
    health: str | None
    reason: str
    ask_agent: str | None = None


class HealthMonitor:
    """The health rules over one domain's records; one monitor per domain.

    Rules, for an instance in state RUNNING or RUNNING_FAILED (called
    *running* below) unless said otherwise; a boundary itself never counts
    ("more than N seconds"):

    - **boot**: never heard from (``last_heard`` None) for more than
      ``boot_timeout`` since it was first seen running -> OUT_OF_CONTACT.
      "First seen running" is its ``state_time``, or the monitor's own
      ``started_at`` when the monitor started after that (a new doctor does
      not know what happened before it).  The monitor keeps that time while
      the instance stays running, even if ``state_time`` moves.
    - **missing**: heard from, but not for more than ``missing_timeout *
      (1 + HEARTBEAT_WRITE_FRACTION)`` since the stored ``last_heard``
      -> OUT_OF_CONTACT.  (The stored time lags the last heartbeat by at
      most the write fraction, see ``heartbeat_write_due``.)
    - **out of contact**: an instance going OUT_OF_CONTACT has its agent
      (``agent_address``) asked for a heartbeat (``dump_state``).  With no
      address, or no agent client, it goes straight to MISSING instead.
      A heartbeat at or after the request proves it alive: the reactor then
      writes the health the agent reports, and the monitor lets it be.
      Nothing heard for more than ``really_missing_timeout`` after the
      request -> MISSING.  An instance found OUT_OF_CONTACT with no request
      of this monitor's pending (a previous doctor asked) is asked again,
      and the wait starts then; so is one that answered but still reads
      OUT_OF_CONTACT and has been silent again past the missing window.
    - MISSING is final for the monitor; the decider replaces the instance.
      A heartbeat (the reactor) may bring its health back.
    - **zombie**: an instance at TERMINATING or later whose ``last_heard``
      is more than ``zombie_seconds`` after its ``state_time`` (it kept
      heartbeating well after it was told to stop, or stopped) and that was
      heard within the last ``zombie_seconds`` -> ZOMBIE.  A ZOMBIE silent
      for more than ``zombie_seconds`` goes back to UNKNOWN (as in the
      original; a new late heartbeat makes it a ZOMBIE again).  The stored
      ``last_heard`` lags by at most the heartbeat write fraction of
      ``missing_timeout``, so ``zombie_seconds`` should exceed that lag.
      The monitor does not ask for a new termination (the decider may, see
      ``epum.doctor``).
    - Instances before RUNNING are not judged.

    Whether the domain is monitored at all (``monitor_health``) is the
    doctor's business.  ``config`` may be replaced between passes.
    """

    def __init__(self, config: HealthConfig, started_at: float, can_ask_agents: bool = True):
        self.config = config
        self.started_at = started_at
        self.can_ask_agents = can_ask_agents
        self._running_since: dict[str, float] = {}
        self._asked_at: dict[str, float] = {}

    def update(self, now: float, instances: Iterable[Instance]) -> list[Verdict]:
        """Judge every record of the domain at ``now``; return the verdicts (changes only).

        The monitor remembers, per instance, when it first saw it running
        and when it asked its agent for a heartbeat (assuming the doctor
        acts on each verdict that asks); it forgets instances not listed.
        """
        verdicts = []
        seen = set()
        for instance in instances:
            seen.add(instance.instance_id)
            self._remember(instance)
            verdict = self.check(instance, now)
            if verdict is None:
                continue
            if verdict.ask_agent is not None:
                self._asked_at[instance.instance_id] = now
            verdicts.append(verdict)
        for memory in (self._running_since, self._asked_at):
            for instance_id in set(memory) - seen:
                del memory[instance_id]
        return verdicts

    def check(self, instance: Instance, now: float) -> Verdict | None:
        """The verdict on one record at ``now``, or None; changes nothing.

        The doctor calls it again on a fresh read before writing, so a
        verdict is never applied to a record that moved on.
        """
        if instance.state >= InstanceState.TERMINATING:
            return self._check_zombie(instance, now)
        if instance.state < InstanceState.RUNNING:
            return None
        if instance.health == InstanceHealthState.MISSING:
            return None
        if instance.health == InstanceHealthState.OUT_OF_CONTACT:
            return self._check_out_of_contact(instance, now)
        reason = self._silence(instance, now)
        if reason is None:
            return None
        return self._ask(instance, reason, InstanceHealthState.OUT_OF_CONTACT)

    def _remember(self, instance: Instance) -> None:
        instance_id = instance.instance_id
        if InstanceState.RUNNING <= instance.state < InstanceState.TERMINATING:
            self._running_since.setdefault(instance_id, self._first_running(instance))
        else:
            self._running_since.pop(instance_id, None)
        if instance.health != InstanceHealthState.OUT_OF_CONTACT:
            self._asked_at.pop(instance_id, None)

    def _first_running(self, instance: Instance) -> float:
        return self._running_since.get(
            instance.instance_id, max(instance.state_time, self.started_at)
        )

    def _silence(self, instance: Instance, now: float) -> str | None:
        """Why a running instance counts as silent, or None if it does not."""
        config = self.config
        if instance.last_heard is None:
            since = self._first_running(instance)
            if now - since > config.boot_timeout:
                return (
                    f"no heartbeat in {now - since:.1f}s since it was seen running"
                    f" (boot_timeout {config.boot_timeout:g}s)"
                )
            return None
        silent = now - instance.last_heard
        if silent > config.missing_window:
            return (
                f"no heartbeat for {silent:.1f}s (missing_timeout {config.missing_timeout:g}s"
                f" + write slack)"
            )
        return None

    def _ask(self, instance: Instance, reason: str, health: str | None) -> Verdict:
        """Ask the agent for a heartbeat (setting ``health``), or MISSING if it can't be asked."""
        address = self._agent_address(instance)
        if address is None:
            return Verdict(
                instance.instance_id,
                InstanceHealthState.MISSING,
                f"{reason}; {self._why_not_asked(instance)}",
            )
        return Verdict(
            instance.instance_id,
            health,
            f"{reason}; asking agent {address} for a heartbeat",
            ask_agent=address,
        )

    def _check_out_of_contact(self, instance: Instance, now: float) -> Verdict | None:
        asked = self._asked_at.get(instance.instance_id)
        heard = instance.last_heard
        if asked is None:
            return self._ask(instance, "out of contact and no request of ours pending", None)
        if heard is not None and heard >= asked:
            if now - heard > self.config.missing_window:
                return self._ask(instance, f"silent again for {now - heard:.1f}s", None)
            return None
        if now - asked > self.config.really_missing_timeout:
            return Verdict(
                instance.instance_id,
                InstanceHealthState.MISSING,
                f"no heartbeat in {now - asked:.1f}s since its agent was asked"
                f" (really_missing_timeout {self.config.really_missing_timeout:g}s)",
            )
        return None

    def _check_zombie(self, instance: Instance, now: float) -> Verdict | None:
        if instance.last_heard is None:
            return None
        zombie_seconds = self.config.zombie_seconds
        silent = now - instance.last_heard
        if silent > zombie_seconds:
            if instance.health != InstanceHealthState.ZOMBIE:
                return None
            return Verdict(
                instance.instance_id,
                InstanceHealthState.UNKNOWN,
                f"a zombie silent for {silent:.1f}s (zombie_seconds {zombie_seconds:g}s)",
            )
        if instance.health == InstanceHealthState.ZOMBIE:
            return None
        late = instance.last_heard - instance.state_time
        if late > zombie_seconds:
            return Verdict(
                instance.instance_id,
                InstanceHealthState.ZOMBIE,
                f"heard from {late:.1f}s after it became {instance.state}"
                f" (zombie_seconds {zombie_seconds:g}s)",
            )
        return None

    def _agent_address(self, instance: Instance) -> str | None:
        if not self.can_ask_agents:
            return None
        return instance.agent_address or None

    def _why_not_asked(self, instance: Instance) -> str:
        if not self.can_ask_agents:
            return "no agent client to ask for a heartbeat"
        return "no agent address to ask for a heartbeat"
