"""Checking a domain's sites with the DTRS before the domain is stored.

A domain that names a site the DTRS does not know, or one the caller has no
credentials for, is bad input: it is refused with an error naming the site,
rather than accepted and left to fail at every launch.  A DTRS that cannot
be reached is not the caller's fault: the domain is accepted and the
problem logged (its launches will show any real trouble).  The questions
about a domain's sites are in flight together (``SiteAnswers``) while the
caller goes on validating the domain, so a domain waits for one
DTRS round trip (one client timeout when the DTRS does not answer), not
two per site.

``CachedDTRS`` keeps the DTRS's positive answers for a short time, so a
burst of domains on the same sites costs the DTRS round trips once.  Only
answers that let a domain in are kept: a site or credentials added to the
DTRS count at once, one taken away is still accepted for at most the cache
time (its launches then fail as they would for a site removed later).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from epum.errors import BadRequestError, NotFoundError

log = logging.getLogger(__name__)

#: At most this many answers are kept (each a few hundred bytes); past it the
#: expired ones go, and if none had expired, all of them.
KEPT_ANSWERS = 10_000

#: At most this many questions about one domain are in flight at once (a
#: domain may name many sites; the rest wait their turn).
QUESTIONS_AT_ONCE = 8


class SiteAnswers:
    """What the DTRS says of ``sites`` and of ``caller``'s credentials for them.

    Every question is asked here, on up to ``QUESTIONS_AT_ONCE`` threads of
    their own that end with the answers; ``check`` judges them.  Nothing is
    stored, so answers no one checks change nothing.
    """

    def __init__(self, dtrs: Any, caller: str, sites: Iterable[str]):
        self._caller = caller
        self._sites = list(dict.fromkeys(sites))
        self._asked: dict[str, tuple[Future, Future]] = {}
        if self._sites:
            threads = min(2 * len(self._sites), QUESTIONS_AT_ONCE)
            asking = ThreadPoolExecutor(threads, thread_name_prefix="epum-dtrs")
            for site in self._sites:
                self._asked[site] = (
                    asking.submit(dtrs.describe_site, site),
                    asking.submit(dtrs.describe_credentials, caller, site),
                )
            asking.shutdown(wait=False)  # its threads end once the questions are answered

    def check(self) -> None:
        """Raise BadRequestError naming the first site (in the order given) unknown to the
        DTRS or lacking the caller's credentials.

        The first question the DTRS does not answer (a timeout, an error of
        its own) ends the checks: that site and the rest are accepted, and
        it is logged.
        """
        for site in self._sites:
            try:
                if self._answer(site, credentials=False) is None:
                    raise NotFoundError(site)
            except NotFoundError:
                raise BadRequestError(f"site {site!r} is not known to the DTRS") from None
            except Exception as exc:
                log.warning("could not check site %s with the DTRS (%s); sites accepted", site, exc)
                return
            try:
                if self._answer(site, credentials=True) is None:
                    raise NotFoundError(site)
            except NotFoundError:
                raise BadRequestError(
                    f"{self._caller} has no credentials for site {site!r}"
                ) from None
            except Exception as exc:
                log.warning("could not check %s's credentials for %s (%s)", self._caller, site, exc)
                return

    def _answer(self, site: str, credentials: bool) -> Any:
        return self._asked[site][credentials].result()  # bounded by the client's timeout


class CachedDTRS:
    """A DTRS client whose answers that are not None are kept ``seconds`` (0: none kept).

    ``describe_site`` and ``describe_credentials`` are the wrapped client's,
    asked only when no kept answer younger than ``seconds`` (by ``clock``)
    exists; errors and None answers are never kept.  Safe to share between
    threads.
    """

    def __init__(self, dtrs: Any, seconds: float, clock: Callable[[], float] = time.monotonic):
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError(f"the DTRS cache time must be a number >= 0, not {seconds!r}")
        self.dtrs = dtrs
        self.seconds = float(seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: dict[Hashable, tuple[float, Any]] = {}

    def describe_site(self, site_name: str) -> Any:
        """The site's description (kept, or asked of the DTRS)."""
        return self._answer(("site", site_name), lambda: self.dtrs.describe_site(site_name))

    def describe_credentials(self, caller: str, site_name: str) -> Any:
        """``caller``'s credentials for the site (kept, or asked of the DTRS)."""
        return self._answer(
            ("credentials", caller, site_name),
            lambda: self.dtrs.describe_credentials(caller, site_name),
        )

    def _answer(self, key: Hashable, ask: Callable[[], Any]) -> Any:
        if self.seconds <= 0:
            return ask()
        now = self._clock()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and now - kept[0] < self.seconds:
                return kept[1]
        answer = ask()
        if answer is not None:
            with self._lock:
                if len(self._kept) >= KEPT_ANSWERS:
                    self._kept = {k: v for k, v in self._kept.items() if now - v[0] < self.seconds}
                    if len(self._kept) >= KEPT_ANSWERS:
                        self._kept.clear()
                self._kept[key] = (now, answer)
        return answer
