"""epum: keeps domains of cloud instances at the size their engine wants."""

from epum.errors import (
    BadRequestError,
    EpumError,
    NotFoundError,
    NotInitializedError,
    RemoteError,
    StoreUnavailableError,
    UnknownOperationError,
    WriteConflictError,
    WrongModeError,
)
from epum.management import EPUManagement
from epum.states import DecisionEngineState, InstanceHealthState, InstanceState

__version__ = "0.1.0"

__all__ = [
    "BadRequestError",
    "DecisionEngineState",
    "EPUManagement",
    "EpumError",
    "InstanceHealthState",
    "InstanceState",
    "NotFoundError",
    "NotInitializedError",
    "RemoteError",
    "StoreUnavailableError",
    "UnknownOperationError",
    "WriteConflictError",
    "WrongModeError",
    "__version__",
]
