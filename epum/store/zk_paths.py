"""Where each piece of the ZooKeeper store lives: the path layout and name quoting.

Every id becomes one znode name, percent-quoted (``quote_name``), so any
string is a valid, unambiguous name; ``ZkPaths`` turns ids into full paths
under the store's base path.

Layout under the base path (names percent-quoted, values JSON)::

    /definitions/<definition_id>      {"definition": {...}, "token": ...}
    /domains/<owner>/<domain_id>      {"owner", "domain_id", "token"}
        /general /engine_conf /health one config section each; the znode
                                      version is the section's version
        /removed                      exists once the domain is marked
        /subscribers                  [[name, op], ...]
        /sensor_data                  {...}
        /instances/<instance_id>      the record; the znode version is
                                      ``Instance.version``
    /index/<instance_id>              {"owner", "domain_id", "token"}
    /history/<owner>/<domain_id>      the domain's decision log, one capped
                                      JSON list (``epum.store.zk_history``)
    /elections/decider|doctor|reaper  kazoo Election recipes
"""

from __future__ import annotations

import functools
from urllib.parse import quote, unquote

from epum.errors import BadRequestError

#: Quoted names remembered: every owner and domain of a large deployment
#: (a heartbeat or RPC quotes its domain's names several times).
QUOTED_KEPT = 4096


def quote_name(name: str) -> str:
    """A znode name for an id: percent-quoted, never empty, ``.`` or ``..``.

    BadRequestError if ``name`` is not a non-empty string.
    """
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"invalid name {name!r}")
    return _quoted(name)


@functools.lru_cache(maxsize=QUOTED_KEPT)
def _quoted(name: str) -> str:
    """``quote_name`` of a checked name (owners and domains recur on every request)."""
    quoted = quote(name, safe="")
    if quoted in (".", ".."):
        quoted = quoted.replace(".", "%2E")
    return quoted


def unquote_name(name: str) -> str:
    """The id a znode name made by ``quote_name`` stands for."""
    return unquote(name)


class ZkPaths:
    """The znode paths of one store, under ``base_path`` (``/`` for the root)."""

    def __init__(self, base_path: str):
        base = "/" + base_path.strip("/")
        self._base = "" if base == "/" else base

    @property
    def base(self) -> str:
        """The base path (``"/"`` for the root)."""
        return self._base or "/"

    @property
    def parent(self) -> str:
        """The base path's parent (``"/"`` when the base is the root or at the top)."""
        head = self._base.rpartition("/")[0]
        return head or "/"

    @property
    def definitions(self) -> str:
        """The parent of every definition."""
        return f"{self._base}/definitions"

    @property
    def domains(self) -> str:
        """The parent of every owner (and under each, of its domains)."""
        return f"{self._base}/domains"

    @property
    def index(self) -> str:
        """The parent of the instance-to-domain index entries."""
        return f"{self._base}/index"

    @property
    def history(self) -> str:
        """The parent of every owner's decision logs."""
        return f"{self._base}/history"

    def history_of(self, owner: str, domain_id: str) -> str:
        """A domain's decision log."""
        return f"{self.history}/{quote_name(owner)}/{quote_name(domain_id)}"

    @property
    def elections(self) -> str:
        """The parent of the election recipes."""
        return f"{self._base}/elections"

    def owner(self, owner: str) -> str:
        """The parent of ``owner``'s domains."""
        return f"{self.domains}/{quote_name(owner)}"

    def domain(self, owner: str, domain_id: str) -> str:
        """The domain's own znode."""
        return f"{self.domains}/{quote_name(owner)}/{quote_name(domain_id)}"

    def definition(self, definition_id: str) -> str:
        """A definition's znode."""
        return f"{self.definitions}/{quote_name(definition_id)}"

    def index_entry(self, instance_id: str) -> str:
        """An instance's index entry."""
        return f"{self.index}/{quote_name(instance_id)}"

    @staticmethod
    def instance(domain_path: str, instance_id: str) -> str:
        """An instance's record under the domain at ``domain_path``."""
        return f"{domain_path}/instances/{quote_name(instance_id)}"

    def domain_of(self, path: str) -> tuple[str, str] | None:
        """``(owner, domain_id)`` of a path at or under a domain, or None above one."""
        prefix = self.domains + "/"
        if not path.startswith(prefix):
            return None
        parts = path[len(prefix) :].split("/")
        if len(parts) < 2:
            return None  # an owner's node
        return unquote_name(parts[0]), unquote_name(parts[1])
