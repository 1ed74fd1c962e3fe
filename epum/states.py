"""Instance, health and decision-engine states.

Instance states are strings that sort in lifecycle order, so ``a < b`` means
"a comes before b".  These names are part of the wire contract.
"""

from __future__ import annotations


class InstanceState:
    """The lifecycle states of an instance, in order."""

    REQUESTING = "100-REQUESTING"
    REQUESTED = "200-REQUESTED"
    ERROR_RETRYING = "300-ERROR_RETRYING"
    PENDING = "400-PENDING"
    STARTED = "500-STARTED"
    RUNNING = "600-RUNNING"
    RUNNING_FAILED = "650-RUNNING_FAILED"
    TERMINATING = "700-TERMINATING"
    TERMINATED = "800-TERMINATED"
    FAILED = "900-FAILED"
    REJECTED = "950-REJECTED"

    ALL: tuple[str, ...] = (
        REQUESTING,
        REQUESTED,
        ERROR_RETRYING,
        PENDING,
        STARTED,
        RUNNING,
        RUNNING_FAILED,
        TERMINATING,
        TERMINATED,
        FAILED,
        REJECTED,
    )
    #: States after which nothing more happens to an instance.
    TERMINAL: tuple[str, ...] = (TERMINATED, FAILED, REJECTED)


def is_live(state: str) -> bool:
    """True for an instance that is or may become running (before TERMINATING)."""
    return state < InstanceState.TERMINATING


class InstanceHealthState:
    """What the doctor and the heartbeats say of a running instance."""

    UNKNOWN = "UNKNOWN"
    OK = "OK"
    MONITOR_ERROR = "MONITOR_ERROR"
    PROCESS_ERROR = "PROCESS_ERROR"
    OUT_OF_CONTACT = "OUT_OF_CONTACT"
    MISSING = "MISSING"
    ZOMBIE = "ZOMBIE"

    ALL: tuple[str, ...] = (
        UNKNOWN,
        OK,
        MONITOR_ERROR,
        PROCESS_ERROR,
        OUT_OF_CONTACT,
        MISSING,
        ZOMBIE,
    )
    #: States a heartbeat may report (the others are the doctor's verdicts).
    REPORTABLE: tuple[str, ...] = (OK, MONITOR_ERROR, PROCESS_ERROR)


class DecisionEngineState:
    """How an engine judges its domain after a decision."""

    PENDING = "PENDING_DE"
    STABLE = "STABLE_DE"
    DEVIATING = "DEVIATING_DE"
    UNKNOWN = "UNKNOWN"
