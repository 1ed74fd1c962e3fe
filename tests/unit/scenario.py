"""A facade in external-decide mode with fakes around it, for scenario tests."""

from __future__ import annotations

from epum.management import EPUManagement
from tests.fakes import FakeAgentClient, FakeCloud, FakeDTRS, FakeNotifier, FakeProvisioner


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class Scenario:
    """Everything a scenario test touches, wired together."""

    def __init__(self, conf: dict | None = None, store=None, dtrs=None):
        self.clock = FakeClock()
        self.provisioner = FakeProvisioner()
        self.notifier = FakeNotifier()
        self.agents = FakeAgentClient()
        initial = {"_external_decide_invocations": True, "service_name": "epum_test"}
        initial.update(conf or {})
        self.epum = EPUManagement(
            initial,
            self.notifier,
            self.provisioner,
            self.agents,
            dtrs or FakeDTRS(),
            store=store,
            clock=self.clock,
        )
        self.epum.initialize()
        self.cloud = FakeCloud(self.epum, self.provisioner)

    def add_domain(self, caller: str, domain_id: str, preserve_n: int, **sections) -> None:
        if "simple" not in self.epum.msg_list_domain_definitions():
            self.epum.msg_add_domain_definition(
                "simple",
                {"general": {"engine_class": "simplest"}, "engine_conf": {"epuworker_type": "dt"}},
            )
        config = {"engine_conf": {"preserve_n": preserve_n}}
        for section, values in sections.items():
            config.setdefault(section, {}).update(values)
        self.epum.msg_add_domain(caller, domain_id, "simple", config)

    def instances(self, caller: str, domain_id: str) -> list[dict]:
        return self.epum.msg_describe_domain(caller, domain_id)["instances"]

    def live(self, caller: str, domain_id: str) -> list[dict]:
        return [i for i in self.instances(caller, domain_id) if i["state"] < "700"]

    def decide(self) -> None:
        self.epum._run_decisions()
