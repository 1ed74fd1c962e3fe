"""Telling subscribers when an instance comes up or goes down."""

from __future__ import annotations

import logging
from typing import Any

from epum.instances import Instance
from epum.states import InstanceState
from epum.store.base import DomainStore

log = logging.getLogger(__name__)


def told_state(state: str) -> str | None:
    """What subscribers hear of an instance in ``state``: RUNNING, FAILED past it, or nothing."""
    if state < InstanceState.RUNNING:
        return None
    if state == InstanceState.RUNNING:
        return InstanceState.RUNNING
    return InstanceState.FAILED


def notice_for(before: Instance, after: Instance) -> str | None:
    """The state subscribers are told of for an accepted ``before`` -> ``after`` update, or None.

    An update at or past RUNNING is told when it changes what subscribers
    know: the told state (RUNNING, or FAILED for anything past it) or the
    address (``public_ip``; a new IP while RUNNING is a new notification, as
    in the original).  The same told state and address are never told twice
    in a row (TERMINATING then TERMINATED is one FAILED).
    """
    state = told_state(after.state)
    if state is None:
        return None
    if (told_state(before.state), before.public_ip) == (state, after.public_ip):
        return None
    return state


class Subscribers:
    """Sends one domain event to every subscriber; a failing send is logged, not raised."""

    def __init__(self, notifier: Any):
        self.notifier = notifier

    def instance_changed(self, domain: DomainStore, before: Instance, after: Instance) -> None:
        """Tell ``domain``'s subscribers of the ``before`` -> ``after`` transition, if notable."""
        state = notice_for(before, after)
        if state is None:
            return
        message = {
            "node_id": after.instance_id,
            "state": state,
            "domain_id": domain.domain_id,
            "properties": {"hostname": after.public_ip},
        }
        for name, op in domain.get_subscribers():
            try:
                self.notifier.notify_by_name(name, op, message)
            except Exception:
                log.exception("notifying %s.%s of %s failed", name, op, after.instance_id)
