"""The domain definitions of the ZooKeeper store: one znode each.

A definition is read from the access's cache once it shows this store's own
writes to it (from the server while it does not, or does not hold it);
the list of ids is always read from the server.

``/definitions/<definition_id>`` holds ``{"definition": {...}, "token": ...}``
(the token makes a create retried after a connection loss recognise its
own earlier success).
"""

from __future__ import annotations

import uuid
from typing import Any

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from epum.errors import NotFoundError, WriteConflictError
from epum.store.codec import dump, field, load
from epum.store.zk_access import MERGE_TRIES, ZkAccess
from epum.store.zk_paths import ZkPaths, unquote_name
from epum.store.zk_session import ZkCalls


class ZkDefinitions:
    """Create, read, replace, delete and list definitions (reads as the module says)."""

    def __init__(self, access: ZkAccess, paths: ZkPaths):
        self._access = access
        self._paths = paths

    def add(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Create a definition; WriteConflictError if the id exists."""
        path = self._paths.definition(definition_id)
        token = uuid.uuid4().hex
        raw = dump({"definition": definition, "token": token}, f"definition {definition_id}")

        def op(zk: ZkCalls, retried: bool) -> Any:
            try:
                return zk.create(path, raw, include_data=True)[1]
            except NodeExistsError:
                return zk.claim(path, token, retried, f"definition {definition_id}")

        self._access.expect_present(path, self._access.call(op))

    def get(self, definition_id: str) -> dict[str, Any] | None:
        """A definition (from the cache, see the module), or None."""
        path = self._paths.definition(definition_id)
        access = self._access
        got = access.read_or_server(path, access.fresh(path))
        return None if got is None else field(got[0], "definition", path)

    def update(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Replace a definition; NotFoundError if it does not exist."""
        path = self._paths.definition(definition_id)
        dump(definition, f"definition {definition_id}")

        def op(zk: ZkCalls, retried: bool) -> Any:
            for _ in range(MERGE_TRIES):
                try:
                    raw, stat = zk.get(path)
                except NoNodeError:
                    raise NotFoundError(f"definition {definition_id} not found") from None
                value = load(raw, path)
                field(value, "definition", path)
                value["definition"] = definition
                try:
                    return zk.set(path, dump(value), version=stat.version)
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise NotFoundError(f"definition {definition_id} not found") from None
            raise WriteConflictError(f"definition {definition_id} kept changing")

        self._access.expect_present(path, self._access.call(op))

    def remove(self, definition_id: str) -> None:
        """Delete a definition; NotFoundError if it does not exist."""
        path = self._paths.definition(definition_id)

        def op(zk: ZkCalls, retried: bool) -> None:
            try:
                zk.delete(path)
            except NoNodeError:
                if retried:  # our first try may have deleted it
                    return
                raise NotFoundError(f"definition {definition_id} not found") from None

        self._access.call(op)
        self._access.expect_absent(path)

    def ids(self) -> list[str]:
        """Every definition id, sorted."""
        names = self._access.children(self._paths.definitions, False) or []
        return sorted(unquote_name(n) for n in names)
