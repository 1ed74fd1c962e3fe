"""One error hierarchy, shared by the facade, the store and the wire.

The four errors every client of the original services knows travel under
their ``dashi.exceptions.*`` names (see ``WIRE_NAMES``); any other error
travels under its own class name and comes back as ``RemoteError``.
"""

from __future__ import annotations


class EpumError(Exception):
    """Base of every error epum raises on purpose."""


class BadRequestError(EpumError):
    """The request is malformed or invalid; nothing was changed."""


class NotFoundError(EpumError):
    """The named definition, domain or instance does not exist."""


class WriteConflictError(EpumError):
    """A compare-and-set lost a race (or the entity already exists); re-read and retry."""


class StoreUnavailableError(EpumError):
    """The store did not answer in time, refused access, or is not running.

    A write's outcome is unknown: re-read before trying again.
    """


class ConfigError(EpumError, ValueError):
    """The service's own configuration is unusable; the message names the key.

    A server-side problem, not a caller's: it never travels as BadRequestError.
    """


class CorruptDataError(EpumError):
    """Stored data cannot be decoded or does not have the shape epum wrote.

    A server-side problem: the caller's request was fine; the message names
    what is corrupt.
    """


class NotAuthorizedError(BadRequestError):
    """The broker-validated caller may not make this request (``trust_user_id``).

    A caller's mistake, so a ``BadRequestError`` on the wire; nothing ran.
    """


class NotLeaderError(EpumError):
    """A leader's term is over: the write or request it made under that term was refused.

    Raised by a control whose term has ended and by a store whose fenced
    write finds the term no longer in office (on ZooKeeper: its election
    seat is gone); nothing of the refused write was stored.
    """


class UnknownOperationError(EpumError):
    """The RPC operation is not one the service offers."""


class NotInitializedError(EpumError):
    """The facade was used before ``initialize()``."""


class WrongModeError(EpumError):
    """A test hook was called on a facade that is not in external-decide mode."""


class RemoteError(EpumError):
    """An error from a remote service whose type is not on the allow-list.

    ``exc_type`` is the remote type's name, ``value`` its message.
    """

    def __init__(self, exc_type: str, value: str, traceback: str | None = None):
        super().__init__(f"{exc_type}: {value}")
        self.exc_type = exc_type
        self.value = value
        self.traceback = traceback


#: Wire names of the errors every client knows (PROTOCOL.md section 5).
WIRE_NAMES: dict[type[EpumError], str] = {
    BadRequestError: "dashi.exceptions.BadRequestError",
    NotFoundError: "dashi.exceptions.NotFoundError",
    UnknownOperationError: "dashi.exceptions.UnknownOperationError",
    WriteConflictError: "dashi.exceptions.WriteConflictError",
}
