"""Shares of the domains, for deciding them with several deciders at once.

With ``epumanagement.decider_partitions`` N above 1, the domains are split
into N shares by a stable hash of ``(owner, domain_id)``, and each share has
its own decider: one ``Decider`` per share in every worker, of which the
store puts exactly one in office per share at a time (on ZooKeeper, kazoo's
``SetPartitioner`` balances the shares over the workers; see
``epum.store.zk_partitions``).  A domain's share never changes while N stays
the same, so its engine lives in one decider until that decider's term ends.
With N = 1 (the default) there is one share, every domain is in it, and the
one decider is elected as before.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


def share_of(key: tuple[str, str], count: int) -> int:
    """The share (0 .. count-1) that domain ``key`` = ``(owner, domain_id)`` is in.

    The same in every process and every run (a CRC-32 of the key, not
    Python's salted ``hash``).  ValueError if ``count`` is not a positive int.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"the number of shares must be an int >= 1, got {count!r}")
    owner, domain_id = key
    return zlib.crc32(f"{owner}\0{domain_id}".encode()) % count


@dataclass(frozen=True)
class Share:
    """Share ``index`` of ``count``: the domains one decider decides."""

    index: int
    count: int

    def __post_init__(self) -> None:
        share_of(("", ""), self.count)  # checks count
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise ValueError(f"a share's index must be an int, got {self.index!r}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"share index {self.index} is not in 0..{self.count - 1}")

    @property
    def name(self) -> str:
        """The share's name in the store's partitioning: its index as a string."""
        return str(self.index)

    def owns(self, key: tuple[str, str]) -> bool:
        """True if domain ``key`` = ``(owner, domain_id)`` is in this share."""
        return self.count == 1 or share_of(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"


def all_shares(count: int) -> list[Share]:
    """The ``count`` shares that together hold every domain once, in index order."""
    share_of(("", ""), count)
    return [Share(index, count) for index in range(count)]
