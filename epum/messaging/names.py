"""Broker names: the exchange, service queues and senders under a ``sysname``.

With a sysname every exchange and queue name gets ``"<sysname>."`` in front
(PROTOCOL.md section 5), so several systems can share one broker.  Names at
the API level (service names, a heartbeat's sender) are the bare names; the
prefix is added when a name goes on the wire and removed when one comes off.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The exchange every dashi-compatible service uses.
DEFAULT_EXCHANGE = "default_dashi_exchange"


@dataclass(frozen=True)
class Names:
    """The naming rules of one system on the broker."""

    sysname: str | None = None
    exchange_base: str = DEFAULT_EXCHANGE

    @property
    def exchange(self) -> str:
        """The direct exchange's name, sysname-prefixed."""
        return self.qualify(self.exchange_base)

    def qualify(self, name: str) -> str:
        """``name`` as it appears on the broker (queue, routing key, sender)."""
        return f"{self.sysname}.{name}" if self.sysname else name

    def unqualify(self, name: str) -> str:
        """``name`` without this system's prefix (unchanged if it has none)."""
        prefix = f"{self.sysname}." if self.sysname else ""
        if prefix and name.startswith(prefix):
            return name[len(prefix) :]
        return name
