"""Telling subscribers when an instance comes up or goes down."""

from __future__ import annotations

import logging
from typing import Any

from epum.instances import Instance
from epum.states import InstanceState
from epum.store.base import DomainStore

log = logging.getLogger(__name__)


def notice_for(before: str, after: str) -> str | None:
    """The state subscribers are told of for a transition, or None.

    Reaching RUNNING is told as RUNNING; first passing RUNNING (whether the
    instance ran or never came up) is told as FAILED.  Every other
    transition is silent, so each instance is told of at most twice.
    """
    if before < InstanceState.RUNNING == after:
        return InstanceState.RUNNING
    if before <= InstanceState.RUNNING < after:
        return InstanceState.FAILED
    return None


class Subscribers:
    """Sends one domain event to every subscriber; a failing send is logged, not raised."""

    def __init__(self, notifier: Any):
        self.notifier = notifier

    def instance_changed(self, domain: DomainStore, before: Instance, after: Instance) -> None:
        """Tell ``domain``'s subscribers of the ``before`` -> ``after`` transition, if notable."""
        state = notice_for(before.state, after.state)
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
