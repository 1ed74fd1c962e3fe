"""Sources the collector polls: what a poll is given, what it returns, and
how the engines read the readings the collector stored.

A polled source (``PolledSensorSource``) is a ``SensorSource`` with one more
method, ``collect(target, timeout)``: it asks a metrics server for the
domain's readings and returns them.  The collector
(``epum.sensors.collector``) stores them, with the time they were taken, as
the domain's ``sensor_data`` and each instance record's ``sensor_data``:
``{metric: {"Series": [floats, oldest first], "time": <epoch seconds>}}``.
Engines read them from their state through ``instance_samples`` and
``domain_samples``, which never touch the network.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from epum.errors import BadRequestError
from epum.instances import DomainState, Instance
from epum.sensors.base import SensorSource, to_samples
from epum.sensors.credentials import SensorCredentials

#: The key of a stored reading that says when it was taken (epoch seconds).
READING_TIME_KEY = "time"
#: The key of a stored reading that holds its samples (the original's name).
READING_SERIES_KEY = "Series"

#: The original's sample period (seconds) when a domain names none.
DEFAULT_SAMPLE_PERIOD = 90.0
#: No domain is polled more often than this (seconds): a metrics server is
#: shared, and the decider's passes are seconds apart anyway.
MIN_SAMPLE_PERIOD = 10.0
#: A reading older than this many sample periods counts as no reading: one
#: or two missed polls are tolerated, a dead source is not trusted for long.
DEFAULT_STALE_PERIODS = 3.0

#: The documentation of the keys every polled source shares.
POLLING_DOC = f"""\
sample_period (number, default {DEFAULT_SAMPLE_PERIOD:g}, sensor_types prometheus, rabbitmq,
    cloudwatch, opentsdb): seconds between polls of the domain's source (at
    least {MIN_SAMPLE_PERIOD:g}), and the history a query covers.
sensor_stale_periods (number >= 1, default {DEFAULT_STALE_PERIODS:g}): a stored reading older
    than this many sample periods counts as no reading."""

#: Looks up a site's cloud credentials for an owner (the DTRS's
#: ``describe_credentials(caller, site_name)``); returns a mapping with
#: ``access_key`` and ``secret_key``, or None.
CredentialsLookup = Callable[[str, str], "Mapping[str, Any] | None"]


class SensorQueryError(Exception):
    """A metrics server could not be queried or gave an answer we cannot read."""


@dataclass(frozen=True)
class PollTarget:
    """What one poll of one domain is about.

    ``now`` is the epoch time of the poll; ``sample_period`` the seconds of
    history a query covers (it ends at ``now``).
    """

    owner: str
    domain_id: str
    instances: Sequence[Instance]
    now: float
    sample_period: float
    credentials_lookup: CredentialsLookup | None = None


@dataclass
class Readings:
    """What a poll measured: ``{metric: samples}`` for the domain and per instance."""

    domain: dict[str, list[float]] = field(default_factory=dict)
    instances: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add_instance(self, instance_id: str, metric: str, samples: list[float]) -> None:
        """Record samples of ``metric`` for one instance (empty lists are dropped)."""
        if samples:
            self.instances.setdefault(instance_id, {})[metric] = samples


def stored_reading(samples: Sequence[float], taken_at: float) -> dict[str, Any]:
    """The stored form of one metric's samples, stamped with when they were taken."""
    return {READING_SERIES_KEY: [float(s) for s in samples], READING_TIME_KEY: float(taken_at)}


def fresh_samples(
    value: Any, now: float | None = None, max_age: float | None = None
) -> list[float] | None:
    """The samples of a stored reading, or None when it has none or is stale.

    With ``now`` and ``max_age`` given, a reading that carries a time older
    than ``now - max_age`` counts as no reading; a reading without a time is
    taken as it is (values pushed by hand, the "config" source).
    """
    samples = to_samples(value)
    if samples is None or now is None or max_age is None or not isinstance(value, Mapping):
        return samples
    taken = value.get(READING_TIME_KEY)
    if isinstance(taken, (int, float)) and math.isfinite(taken) and now - taken > max_age:
        return None
    return samples


def sample_period(conf: Mapping[str, Any], minimum: float = MIN_SAMPLE_PERIOD) -> float:
    """The domain's ``sample_period`` (default 90 s), never below ``minimum``."""
    value = conf.get("sample_period", DEFAULT_SAMPLE_PERIOD)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        value = DEFAULT_SAMPLE_PERIOD
    return max(float(value), minimum)


def validate_polling_keys(conf: Mapping[str, Any]) -> None:
    """Check the keys every polled source shares: ``sample_period``, ``sensor_stale_periods``."""
    for key, low in (("sample_period", 0.0), ("sensor_stale_periods", 1.0)):
        value = conf.get(key)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < low
            or value <= 0
        ):
            raise BadRequestError(
                f"{key} must be a number of at least {low or 'above 0'}, not {value!r}"
            )


def string_key(conf: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    """``conf[key]`` as a non-empty string (or ``default``), else BadRequestError."""
    value = conf.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequestError(f"{key} must be a non-empty string, not {value!r}")
    return value


def sample_function(conf: Mapping[str, Any], names: Mapping[str, str], what: str) -> str:
    """The source's own name (``names``, keyed lowercase) for ``conf``'s
    ``sample_function`` (default ``Average``); ``BadRequestError`` naming
    ``what`` the source lacks."""
    name = conf.get("sample_function", "Average")
    found = names.get(str(name).lower()) if isinstance(name, str) else None
    if found is None:
        raise BadRequestError(f"sample_function {name!r} has no {what}")
    return found


def metric_list(conf: Mapping[str, Any], key: str) -> list[str]:
    """``conf[key]`` as a list of metric names (a list or a comma-separated string)."""
    value = conf.get(key) or []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise BadRequestError(f"{key} must be a list of metric names, not {value!r}")
    return list(value)


def port_key(conf: Mapping[str, Any], key: str, default: int) -> int:
    """``conf[key]`` as a TCP port (an int or a digit string), else BadRequestError."""
    value = conf.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise BadRequestError(f"{key} must be a TCP port number, not {value!r}")
    return value


class PolledSensorSource(SensorSource):
    """A source whose readings the collector fetches and stores.

    Engines read the stored readings; one older than ``sensor_stale_periods``
    (default 3) sample periods at the decision's time (``state.now``, when
    given) counts as no reading.

    Built as ``cls(engine_conf, credentials=None)``: the engine builds it
    without credentials (it only reads stored data); the collector passes
    the worker's ``SensorCredentials``.  ``collect`` may block up to about
    ``timeout`` seconds per query and raises ``SensorQueryError`` (or
    anything else) on failure; the collector logs it and retries at the
    next period.
    """

    def __init__(self, conf: Mapping[str, Any], credentials: SensorCredentials | None = None):
        self.validate_config(conf)
        self.conf = conf
        self.credentials = credentials or SensorCredentials()
        periods = conf.get("sensor_stale_periods") or DEFAULT_STALE_PERIODS
        self.max_age = sample_period(conf) * float(periods)

    def _fresh(self, value: Any, state: DomainState) -> list[float] | None:
        now = state.now if state.now else None
        return fresh_samples(value, now, self.max_age)

    @abc.abstractmethod
    def collect(self, target: PollTarget, timeout: float) -> Readings:
        """Query the metrics server for ``target``'s readings."""

    def instance_samples(
        self, metric: str, instance_ids: Sequence[str], state: DomainState
    ) -> dict[str, list[float]]:
        """The stored readings of ``metric`` of those instances that have one."""
        out: dict[str, list[float]] = {}
        for instance_id in instance_ids:
            inst = state.instances.get(instance_id)
            data = inst.sensor_data if inst is not None else None
            if isinstance(data, Mapping):
                samples = self._fresh(data.get(metric), state)
                if samples is not None:
                    out[instance_id] = samples
        return out

    def domain_samples(self, metric: str, state: DomainState) -> list[float] | None:
        """The domain's stored reading of ``metric``, or None (also when stale)."""
        return self._fresh(state.sensor_data.get(metric), state)
