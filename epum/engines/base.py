"""The engine contract: what a decision engine is given and must do.

An engine decides, for one domain, which instances to launch and which to
destroy.  The decider builds one engine per domain, calls ``initialize``
once, ``decide`` at every pass, ``reconfigure`` when the domain's engine
config version rose, and ``dying`` when the domain is removed.  An engine
acts only through its ``EngineControl``; it never talks to a cloud, a store
or a queue itself.
"""

from __future__ import annotations

import abc
import copy
import logging
from typing import Any, ClassVar, Protocol

from epum.instances import DomainState
from epum.states import DecisionEngineState


class EngineControl(Protocol):
    """What an engine may do to its domain."""

    def launch(
        self,
        deployable_type: str | None,
        site: str | None,
        allocation: str | None,
        count: int = 1,
        extravars: dict[str, Any] | None = None,
    ) -> tuple[str, list[str]]:
        """Ask for ``count`` new instances; returns ``(launch_id, instance_ids)``."""

    def destroy_instances(self, instance_ids: list[str]) -> None:
        """Ask for these instances to be terminated."""


class Engine(abc.ABC):
    """Base class of decision engines.

    ``de_state`` says how the engine judges its domain after its last
    decision (a ``DecisionEngineState``).  ``log`` is where the engine logs
    its decisions; the decider sets it, before ``initialize``, to the
    engine module's logger.  Lines logged while the decider works on a
    domain carry its caller and domain (``epum.logcontext``).
    """

    de_state: str = DecisionEngineState.PENDING
    log: logging.Logger | logging.LoggerAdapter = logging.getLogger("epum.engines")

    #: The engine's promise that ``decide`` depends on nothing but its config, the
    #: domain's records and sensor data, and what it kept from its own earlier
    #: decisions: never ``state.now``, a clock or anything outside.  So after a
    #: decision that asked for nothing and explained nothing, another on the very
    #: same inputs would again ask for and explain nothing, and leave the engine
    #: (its ``de_state`` included) as it was; the decider skips such decisions
    #: (``epum.pass_inputs``).  Honoured only on the class that sets it: a subclass
    #: that changes ``decide`` does not inherit the promise.
    decides_on_inputs_only: ClassVar[bool] = False

    @abc.abstractmethod
    def initialize(self, control: EngineControl, state: DomainState, conf: dict[str, Any]) -> None:
        """Take the engine config; called once before the first ``decide``."""

    @abc.abstractmethod
    def decide(self, control: EngineControl, state: DomainState) -> None:
        """Look at ``state`` and launch or destroy through ``control``."""

    def reconfigure(self, control: EngineControl, newconf: dict[str, Any]) -> None:
        """Take changed config keys (merged over the old ones by the store)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be reconfigured")

    def dying(self) -> None:
        """The domain is being removed; release anything the engine holds."""

    @classmethod
    def validate_config(cls, conf: dict[str, Any]) -> None:
        """Raise ``BadRequestError`` naming what is wrong with ``conf``."""

    @classmethod
    def sites(cls, conf: dict[str, Any]) -> list[str]:
        """The sites a (valid) config launches on, so they can be checked up front."""
        return []

    @classmethod
    def get_config_doc(cls) -> str:
        """Human-readable documentation of the engine config keys."""
        return (cls.__doc__ or "").strip()


def scratch_copy(engine: Engine) -> Engine:
    """A copy of ``engine`` to decide on in dry-run, to be dropped afterwards.

    Its state (cooldowns, trackers) is copied; its parsed config and logger,
    which deciding never changes, are shared.
    """
    memo = {id(engine.log): engine.log}
    conf = getattr(engine, "conf", None)
    if conf is not None:
        memo[id(conf)] = conf
    return copy.deepcopy(engine, memo)
