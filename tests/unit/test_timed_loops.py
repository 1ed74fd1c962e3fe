"""The facade outside external-decide mode: timed loops, wake-ups, prompt shutdown, statsd."""

from __future__ import annotations

import socket
import threading
import time

from epum.management import EPUManagement
from tests.fakes import FakeDTRS, FakeNotifier, FakeProvisioner
from tests.kit import wait_until


def make_epum(**conf) -> tuple[EPUManagement, FakeProvisioner]:
    provisioner = FakeProvisioner()
    epum = EPUManagement(conf, FakeNotifier(), provisioner, None, FakeDTRS())
    epum.initialize()
    epum.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
    return epum, provisioner


def test_a_change_wakes_the_decider_before_the_timed_pass():
    epum, provisioner = make_epum(decider_loop_interval=3600)
    try:
        epum.msg_add_domain("alice", "dom", "simple", {"engine_conf": {"preserve_n": 2}})
        assert wait_until(lambda: len(provisioner.provisioned) == 2)
        (victim, _) = provisioner.provisioned_ids()
        epum.msg_instance_info("prov", {"node_id": victim, "state": "900-FAILED"})
        assert wait_until(lambda: len(provisioner.provisioned) == 3)
    finally:
        epum.shutdown()


def test_shutdown_stops_the_loops_promptly():
    epum, _ = make_epum(decider_loop_interval=3600)
    roles = [epum.decider, epum.doctor, epum.reaper]
    assert wait_until(lambda: all(r.is_leader for r in roles))
    started = time.monotonic()
    epum.shutdown()
    assert not any(r.is_leader for r in roles)
    assert time.monotonic() - started < 5
    assert not [t for t in threading.enumerate() if t.name.startswith("epum-") and t.is_alive()]


def test_statsd_gets_domain_gauge_and_pass_timing():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    port = receiver.getsockname()[1]
    provisioner = FakeProvisioner()
    epum = EPUManagement(
        {"_external_decide_invocations": True},
        FakeNotifier(),
        provisioner,
        None,
        FakeDTRS(),
        statsd_cfg={"host": "127.0.0.1", "port": port},
    )
    epum.initialize()
    try:
        epum.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
        epum.msg_add_domain("alice", "dom", "simple", {"engine_conf": {"preserve_n": 1}})
        epum._run_decisions()
        packets = {receiver.recv(1024).decode() for _ in range(2)}
        assert "epum.domains.active:1|g" in packets
        assert any(p.startswith("epum.decider.pass:") and p.endswith("|ms") for p in packets)
    finally:
        epum.shutdown()
        receiver.close()
