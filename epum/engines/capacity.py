"""Learning that a site is full from its launch failures (the original's rule).

A cloud that is out of room fails new instances.  The original multi-site
engine watched, per site, the number of FAILED records and the number of
healthy (live) instances at each decision.  When the FAILED count rose:

- if the site has fewer than ``failure_threshold`` FAILED records, nothing
  is concluded (a few failures are normal);
- else, if the healthy count did not grow since the last decision, the
  site's capacity is taken to be its healthy count: it holds no more;
- if the healthy count did grow, the capacity is unknown again.

The original kept a learnt capacity until the next rise of the FAILED count,
which never comes once nothing more is launched there; epum also forgets it
``retry_period`` seconds after it was learnt, so a site that recovered is
used again.
"""

from __future__ import annotations

#: The original's threshold of FAILED records before a site can be judged full.
DEFAULT_FAILURE_THRESHOLD = 32

#: Why 600 s: a full site is tried again every ten minutes, not every pass.
DEFAULT_RETRY_PERIOD = 600.0


class SiteCapacity:
    """What one site's failures say about its capacity; see the module doc."""

    def __init__(self) -> None:
        self.last_failed = 0
        self.last_healthy = 0
        self.capacity: int | None = None
        self.learnt_at: float | None = None

    def update(
        self, failed: int, healthy: int, now: float, threshold: int, retry_period: float
    ) -> int | None:
        """Take this decision's counts; return the capacity (None: not known to be full)."""
        if failed > self.last_failed:
            if failed >= threshold and healthy <= self.last_healthy:
                if self.capacity is None:
                    self.learnt_at = now
                self.capacity = healthy
            else:
                self.capacity = None
        elif self.learnt_at is not None and now >= self.learnt_at + retry_period:
            self.capacity = None
        if self.capacity is None:
            self.learnt_at = None
        self.last_failed = failed
        self.last_healthy = healthy
        return self.capacity
