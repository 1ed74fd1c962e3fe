"""The sensor source interface, sample values and sample functions.

A ``SensorSource`` tells an engine what a metric measured, either per
instance (``instance_samples``) or for the whole domain
(``domain_samples``).  Samples are plain lists of floats, oldest first; an
engine reduces them with one of ``SAMPLE_FUNCTIONS``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from epum.errors import BadRequestError
from epum.instances import DomainState

#: How an engine reduces a list of samples to one number.
SAMPLE_FUNCTIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "Average": lambda xs: sum(xs) / len(xs),
    "Sum": lambda xs: float(sum(xs)),
    "Max": lambda xs: float(max(xs)),
    "Min": lambda xs: float(min(xs)),
}


def sample_function(name: str) -> Callable[[Sequence[float]], float]:
    """The sample function called ``name`` (case-insensitive), else BadRequestError."""
    if isinstance(name, str):
        for known, func in SAMPLE_FUNCTIONS.items():
            if known.lower() == name.lower():
                return func
    raise BadRequestError(
        f"sample_function must be one of {', '.join(SAMPLE_FUNCTIONS)}, not {name!r}"
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def to_samples(value: Any) -> list[float] | None:
    """Read one metric's data as a list of samples; None if it is not such data.

    Accepted shapes: a number (one sample), a list of numbers, or a mapping
    with a ``Series`` list of numbers (the shape of records' ``sensor_data``).
    An empty list is no data and gives None.
    """
    if isinstance(value, Mapping):
        value = value.get("Series")
    if _number(value):
        return [float(value)]
    if isinstance(value, (list, tuple)) and value and all(_number(v) for v in value):
        return [float(v) for v in value]
    return None


class SensorSource(abc.ABC):
    """Where an engine reads its metric.

    A source is built as ``cls(engine_conf)`` and reads its own keys there;
    ``CONFIG_DOC`` documents them.  Implementations must not block for long
    (the decider calls them on every pass) and must not raise for missing
    data: an instance or a domain with no reading is simply absent from the
    answer.
    """

    CONFIG_DOC: str = ""

    @abc.abstractmethod
    def __init__(self, conf: Mapping[str, Any]):
        """Read (and check) the source's keys of the engine conf."""

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Raise ``BadRequestError`` naming a bad source key of the engine conf."""

    @abc.abstractmethod
    def instance_samples(
        self, metric: str, instance_ids: Sequence[str], state: DomainState
    ) -> dict[str, list[float]]:
        """Samples of ``metric`` for those of ``instance_ids`` that have any."""

    def domain_samples(self, metric: str, state: DomainState) -> list[float] | None:
        """Samples of ``metric`` measured for the domain as a whole, or None."""
        return None
