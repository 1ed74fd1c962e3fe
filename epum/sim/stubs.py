"""The small stand-ins a simulated EPUM needs besides the cloud: a clock, a notifier, DTRS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class SimClock:
    """Simulated time: a callable clock that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.start = start
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (not backwards) and return the new time."""
        if seconds < 0:
            raise ValueError("simulated time does not go backwards")
        self.now += seconds
        return self.now

    @property
    def elapsed(self) -> float:
        """Simulated seconds since ``start``."""
        return self.now - self.start


@dataclass(frozen=True)
class Notification:
    """One subscriber notification EPUM sent."""

    time: float
    receiver: str
    operation: str
    message: dict[str, Any]


class SimNotifier:
    """Keeps every ``notify_by_name`` call, stamped with the simulated time."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.sent: list[Notification] = []

    def notify_by_name(self, receiver_name: str, operation: str, message: dict[str, Any]) -> None:
        """Record one notification."""
        self.sent.append(Notification(self.clock(), receiver_name, operation, dict(message)))


class SimDTRS:
    """A deployable-type registry that knows every site and has credentials for everyone."""

    def describe_site(self, site_name: str) -> dict[str, Any]:
        """A minimal description of any site."""
        return {"name": site_name, "driver_class": "sim"}

    def describe_credentials(self, caller: str, site_name: str) -> dict[str, Any]:
        """Dummy credentials for any caller and site."""
        return {"access_key": f"{caller}-key", "secret_key": "sim"}
