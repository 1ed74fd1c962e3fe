"""Instance records and the engine's view of a domain.

``Instance`` is an immutable record; a store hands it out with the
``version`` it was read at and takes it back for a compare-and-set write.
``DomainState`` is what an engine sees of its domain in one decision.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from epum.errors import BadRequestError
from epum.states import InstanceHealthState, InstanceState

log = logging.getLogger(__name__)

#: Fields every record has.
REQUIRED_FIELDS = (
    "instance_id",
    "launch_id",
    "site",
    "allocation",
    "state",
    "state_time",
    "health",
)


@dataclass(frozen=True)
class Instance:
    """One instance of a domain, as epum knows it.

    ``last_heard`` is when a heartbeat last confirmed the instance (epum's
    own field, written at a bounded rate, see ``epum.reactor``), and
    ``agent_address`` the name its agent sends heartbeats from (where the
    doctor sends ``dump_state``).
    ``extra_fields`` holds what else the provisioner sent (``iaas_image``,
    ``ctx_name``, ...), within the bounds of ``extra_fields_of``; ``to_dict``
    shows them as fields of the record, as the original kept them.
    ``version`` is the store version the record was read at; it is not part
    of the record's content.
    """

    instance_id: str
    launch_id: str
    site: str | None
    allocation: str | None
    state: str
    state_time: float
    health: str = InstanceHealthState.UNKNOWN
    deployable_type: str | None = None
    extravars: dict | None = None
    iaas_id: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    hostname: str | None = None
    errors: list | None = None
    error_time: float | None = None
    update_counter: int | None = None
    sensor_data: dict | None = None
    last_heard: float | None = None
    agent_address: str | None = None
    extra_fields: dict[str, Any] = field(default_factory=dict)
    version: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (without the store version), extra fields
        flattened in beside the declared ones."""
        out = {name: _copied(getattr(self, name)) for name in _CONTENT_FIELDS}
        for key, value in self.extra_fields.items():
            out.setdefault(key, _copied(value))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], version: int | None = None) -> Instance:
        """Build a record from a stored dict; keys that are not declared fields are its
        extra fields."""
        missing = [k for k in REQUIRED_FIELDS if k not in data]
        if missing:
            raise BadRequestError(f"instance record lacks {', '.join(missing)}")
        known = {k: v for k, v in data.items() if k in RECORD_FIELDS and k != EXTRA}
        extra = {k: v for k, v in data.items() if k not in RECORD_FIELDS}
        return cls(version=version, extra_fields=extra, **known)

    def replace(self, **changes: Any) -> Instance:
        """A copy with ``changes`` applied (the store version is kept)."""
        return dataclasses.replace(self, **changes)


#: Every content field of a record.
RECORD_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(Instance)) - {
    "version"
}

#: The field holding the provisioner's undeclared fields (a name it cannot use).
EXTRA = "extra_fields"


def _copied(value: Any) -> Any:
    """``value`` as a record dict may carry it: containers copied, so the dict owns them."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


#: The declared content fields in their order, as ``to_dict`` gives them.
_CONTENT_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Instance) if f.name not in ("version", EXTRA)
)

#: Bounds of the undeclared fields one record keeps (the whole record is bounded
#: too, by ``limits.max_record_bytes``): a name of at most 64 characters, a JSON
#: value (scalar, list or mapping) of at most 1 KiB encoded, and 8 KiB encoded
#: for all of them together.
EXTRA_NAME_MAX = 64
EXTRA_VALUE_MAX_BYTES = 1024
EXTRA_TOTAL_MAX_BYTES = 8192

#: Fields the provisioner may set through ``instance_info``.
PROVISIONER_FIELDS: frozenset[str] = RECORD_FIELDS - {
    "instance_id",
    "launch_id",
    "health",
    "last_heard",
    "agent_address",
    "state_time",
    EXTRA,
}


_ABSENT = object()


def extra_fields_of(
    content: Mapping[str, Any], kept: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The undeclared fields of a provisioner's report to keep, merged over ``kept``.

    Kept: any JSON value (scalars, lists such as the original provisioner's
    ``state_changes`` of ``[state, time]`` pairs, mappings), under a string
    name of at most ``EXTRA_NAME_MAX`` characters, each at most
    ``EXTRA_VALUE_MAX_BYTES`` encoded, all of them (with those already
    ``kept``) at most ``EXTRA_TOTAL_MAX_BYTES``; anything else is dropped and
    logged by name, never stored.
    """
    out = dict(kept or {})
    for key, value in content.items():
        if key in RECORD_FIELDS or key == "node_id":
            continue
        if not isinstance(key, str) or not key or len(key) > EXTRA_NAME_MAX:
            log.warning("instance field %.64r dropped: a name of 1..%d chars", key, EXTRA_NAME_MAX)
            continue
        try:
            size = len(json.dumps(value, allow_nan=False).encode())
        except (TypeError, ValueError):
            log.warning("instance field %s dropped: not JSON", key)
            continue
        if size > EXTRA_VALUE_MAX_BYTES:
            log.warning(
                "instance field %s dropped: %d bytes > %d", key, size, EXTRA_VALUE_MAX_BYTES
            )
            continue
        previous = out.get(key, _ABSENT)
        out[key] = value
        if len(json.dumps(out).encode()) > EXTRA_TOTAL_MAX_BYTES:
            log.warning("instance field %s dropped: the record's extra fields are full", key)
            if previous is _ABSENT:
                del out[key]
            else:
                out[key] = previous
    return out


#: Health states that do not call for a replacement.
_HEALTHY = (
    InstanceHealthState.OK,
    InstanceHealthState.UNKNOWN,
    InstanceHealthState.OUT_OF_CONTACT,
)


class DomainState:
    """What an engine sees of its domain: its instances and sensor data.

    ``instances`` maps instance id to ``Instance`` and holds every record the
    domain still has, terminal ones included until they are reaped.  ``now``
    is the time of the decision (seconds since the epoch): engines with
    time-dependent rules (cooldowns) read the time here, never from a clock.
    """

    def __init__(
        self,
        instances: Mapping[str, Instance] | Iterable[Instance],
        sensor_data: Mapping[str, Any] | None = None,
        now: float = 0.0,
    ):
        self.now = now
        if isinstance(instances, Mapping):
            self.instances: dict[str, Instance] = dict(instances)
        else:
            self.instances = {i.instance_id: i for i in instances}
        self.sensor_data: dict[str, Any] = dict(sensor_data or {})

    def get_instances_by_state(self, state: str, maxstate: str | None = None) -> list[Instance]:
        """Instances in ``state``, or in ``state``..``maxstate`` inclusive when given."""
        if maxstate is None:
            return [i for i in self.instances.values() if i.state == state]
        return [i for i in self.instances.values() if state <= i.state <= maxstate]

    def get_pending_instances(self) -> list[Instance]:
        """Instances asked for but not yet RUNNING (REQUESTING included, as epum's own state)."""
        return [i for i in self.instances.values() if i.state < InstanceState.RUNNING]

    def get_live_instances(self) -> list[Instance]:
        """Instances that are or may become running (before TERMINATING)."""
        return [i for i in self.instances.values() if i.state < InstanceState.TERMINATING]

    @property
    def sensors(self) -> dict[str, Any]:
        """The domain's sensor readings, under the original's name (``state.sensors``)."""
        return self.sensor_data

    def get_healthy_instances(self) -> list[Instance]:
        """Instances whose health is OK, UNKNOWN or OUT_OF_CONTACT, before RUNNING_FAILED.

        The original's definition: terminated instances whose health is
        UNKNOWN are left out by the state bound (RUNNING_FAILED and later).
        """
        return [
            i
            for i in self.instances.values()
            if i.health in _HEALTHY and i.state < InstanceState.RUNNING_FAILED
        ]

    def get_unhealthy_instances(self) -> list[Instance]:
        """Live instances whose health is bad, and those in RUNNING_FAILED.

        OUT_OF_CONTACT is not bad yet: the doctor is asking the agent, and
        the instance becomes MISSING only if no answer comes in time.
        """
        return [
            i
            for i in self.instances.values()
            if i.state < InstanceState.TERMINATING
            and (i.health not in _HEALTHY or i.state == InstanceState.RUNNING_FAILED)
        ]
