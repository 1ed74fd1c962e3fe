"""Checking a domain's sites with the DTRS before the domain is stored.

A domain that names a site the DTRS does not know, or one the caller has no
credentials for, is bad input: it is refused with an error naming the site,
rather than accepted and left to fail at every launch.  A DTRS that cannot
be reached is not the caller's fault: the domain is accepted and the
problem logged (its launches will show any real trouble); the sites after it
are not asked about, so a DTRS that does not answer costs one client timeout
per domain, not two per site.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from epum.errors import BadRequestError, NotFoundError

log = logging.getLogger(__name__)


def check_sites(dtrs: Any, caller: str, sites: Iterable[str]) -> None:
    """Raise BadRequestError naming the first site unknown to the DTRS or lacking credentials.

    The first call the DTRS does not answer (a timeout, an error of its own)
    ends the checks: that site and the rest are accepted, and it is logged.
    """
    for site in dict.fromkeys(sites):
        try:
            if dtrs.describe_site(site) is None:
                raise NotFoundError(site)
        except NotFoundError:
            raise BadRequestError(f"site {site!r} is not known to the DTRS") from None
        except Exception as exc:
            log.warning("could not check site %s with the DTRS (%s); sites accepted", site, exc)
            return
        try:
            if dtrs.describe_credentials(caller, site) is None:
                raise NotFoundError(site)
        except NotFoundError:
            raise BadRequestError(f"{caller} has no credentials for site {site!r}") from None
        except Exception as exc:
            log.warning("could not check %s's credentials for %s (%s)", caller, site, exc)
            return
