"""The domain definitions of the ZooKeeper store: one znode each, read from the server.

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
    """Create, read, replace, delete and list definitions (every call reads the server)."""

    def __init__(self, access: ZkAccess, paths: ZkPaths):
        self._access = access
        self._paths = paths

    def add(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Create a definition; WriteConflictError if the id exists."""
        path = self._paths.definition(definition_id)
        token = uuid.uuid4().hex
        raw = dump({"definition": definition, "token": token}, f"definition {definition_id}")

        def op(zk: ZkCalls, retried: bool) -> None:
            try:
                zk.create(path, raw)
            except NodeExistsError:
                if retried and zk.own_creation(path, token) is not None:
                    return
                raise WriteConflictError(f"definition {definition_id} already exists") from None

        self._access.call(op)

    def get(self, definition_id: str) -> dict[str, Any] | None:
        """A definition read from the server, or None."""
        path = self._paths.definition(definition_id)
        got = self._access.server_read(path)
        return None if got is None else field(got[0], "definition", path)

    def update(self, definition_id: str, definition: dict[str, Any]) -> None:
        """Replace a definition; NotFoundError if it does not exist."""
        path = self._paths.definition(definition_id)
        dump(definition, f"definition {definition_id}")

        def op(zk: ZkCalls, retried: bool) -> None:
            for _ in range(MERGE_TRIES):
                try:
                    raw, stat = zk.get(path)
                except NoNodeError:
                    raise NotFoundError(f"definition {definition_id} not found") from None
                value = load(raw, path)
                field(value, "definition", path)
                value["definition"] = definition
                try:
                    zk.set(path, dump(value), version=stat.version)
                    return
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise NotFoundError(f"definition {definition_id} not found") from None
            raise WriteConflictError(f"definition {definition_id} kept changing")

        self._access.call(op)

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

    def ids(self) -> list[str]:
        """Every definition id, sorted."""
        names = self._access.children(self._paths.definitions, False) or []
        return sorted(unquote_name(n) for n in names)
