"""Test doubles for the services epum calls (provisioner, notifier, DTRS, agents),
and recorders of what reaches the facade and what a client sends.

They record every call and speak the Python client signatures of
PROTOCOL.md section 4.  ``FakeCloud`` plays the provisioner's side of the
conversation by turning requests into ``instance_info`` reports.
"""

from __future__ import annotations

import threading
from typing import Any

from epum.errors import NotFoundError
from epum.operations import OPERATIONS, Arg, CallerFrom, Kind, Operation, declare
from epum.states import InstanceState


class FakeProvisioner:
    """Records provision, terminate_nodes and dump_state calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.provisioned: list[dict[str, Any]] = []
        self.terminated: list[str] = []
        self.dump_state_calls: list[list[str]] = []
        self.fail = False

    def provision(
        self,
        launch_id,
        instance_ids,
        deployable_type,
        site,
        allocation=None,
        vars=None,
        caller=None,
    ):
        if self.fail:
            raise ConnectionError("provisioner unreachable")
        with self.lock:
            self.provisioned.append(
                {
                    "launch_id": launch_id,
                    "instance_ids": list(instance_ids),
                    "deployable_type": deployable_type,
                    "site": site,
                    "allocation": allocation,
                    "vars": dict(vars or {}),
                    "caller": caller,
                }
            )

    def terminate_nodes(self, nodes, caller=None):
        if self.fail:
            raise ConnectionError("provisioner unreachable")
        with self.lock:
            self.terminated.extend(nodes)

    def dump_state(self, nodes, force_subscribe=None):
        with self.lock:
            self.dump_state_calls.append(list(nodes))

    def provisioned_ids(self) -> list[str]:
        with self.lock:
            return [i for p in self.provisioned for i in p["instance_ids"]]


class FakeNotifier:
    """Records notify_by_name calls; can be told to fail."""

    def __init__(self) -> None:
        self.notifications: list[tuple[str, str, dict]] = []
        self.fail = False

    def notify_by_name(self, receiver_name, operation, message):
        if self.fail:
            raise ConnectionError("subscriber unreachable")
        self.notifications.append((receiver_name, operation, message))


class FakeDTRS:
    """Knows ``sites`` (every site when None) and ``credentials`` as {(caller, site)}
    (every caller's when None); raises ``fail`` when set."""

    def __init__(self, sites=None, credentials=None, fail=None):
        self.sites = sites
        self.credentials = credentials
        self.fail = fail

    def describe_site(self, site_name):
        if self.fail is not None:
            raise self.fail
        if self.sites is not None and site_name not in self.sites:
            raise NotFoundError(f"no site {site_name}")
        return {"name": site_name}

    def describe_credentials(self, caller, site_name):
        if self.credentials is not None and (caller, site_name) not in self.credentials:
            raise NotFoundError(f"no credentials of {caller} for {site_name}")
        return {"access_key": "k", "secret_key": "s"}


class FakeAgentClient:
    """Records dump_state requests to instance agents."""

    def __init__(self) -> None:
        self.dump_state_calls: list[str] = []

    def dump_state(self, target_address, mock_timestamp=None):
        self.dump_state_calls.append(target_address)


class FakeCloud:
    """The provisioner's side: answers epum's requests with instance_info reports."""

    def __init__(self, epum, provisioner: FakeProvisioner):
        self.epum = epum
        self.provisioner = provisioner
        self.counter = 0

    def report(self, instance_id: str, state: str, **fields) -> None:
        self.counter += 1
        content = {"node_id": instance_id, "state": state, "update_counter": self.counter}
        content.update(fields)
        self.epum.msg_instance_info("provisioner", content)

    def run_all(self) -> list[str]:
        """Bring every requested instance not yet reported to RUNNING; returns their ids."""
        started = []
        for instance_id in self.provisioner.provisioned_ids():
            record = self._record(instance_id)
            if record is not None and record["state"] < InstanceState.RUNNING:
                self.report(instance_id, InstanceState.RUNNING, public_ip=f"ip-{instance_id}")
                started.append(instance_id)
        return started

    def terminate_all(self) -> list[str]:
        """Confirm every termination asked for; returns their ids."""
        done = []
        for instance_id in dict.fromkeys(self.provisioner.terminated):
            record = self._record(instance_id)
            if record is not None and record["state"] < InstanceState.TERMINATED:
                self.report(instance_id, InstanceState.TERMINATED)
                done.append(instance_id)
        return done

    def _record(self, instance_id: str):
        domain = self.epum.store.get_domain_for_instance_id(instance_id)
        if domain is None:
            return None
        record = domain.get_instance(instance_id)
        return record.to_dict() if record else None


class RecordingFacade:
    """Records every ``msg_*`` call as ``(method, args, kwargs)`` and returns its name."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("msg_"):
            raise AttributeError(name)

        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return name

        return record


class RecordingRpc:
    """A transport for clients: records ``(kind, service, op, args)``; a call returns the op."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, dict]] = []

    def call(self, service: str, op: str, /, timeout: float | None = None, **args: Any) -> Any:
        self.sent.append(("call", service, op, args))
        return op

    def fire(self, service: str, op: str, /, **args: Any) -> None:
        self.sent.append(("fire", service, op, args))


#: An operation declared only in the tests (as a later issue might add one), and
#: the declaration with it.
HISTORY = Operation(
    "describe_domain_forecast",
    "msg_describe_domain_forecast",
    Kind.CALL,
    "A domain's size forecast, oldest first.",
    (
        Arg("domain_id", str, "the domain's id"),
        Arg("since", float, "only entries after this time", required=False),
        Arg("limit", int, "at most this many entries", required=False),
    ),
    caller=CallerFrom.OWNER,
)
EXTENDED = declare(*OPERATIONS, HISTORY)
