"""Shares of the domains (epum.partitions) and deciders of several shares in memory."""

from __future__ import annotations

import pytest

from epum.management import EPUManagement
from epum.partitions import Share, all_shares, share_of
from tests.fakes import FakeDTRS, FakeNotifier, FakeProvisioner
from tests.kit import wait_until

KEYS = [(f"owner{n % 7}", f"domain-{n}") for n in range(1000)]


def test_every_domain_is_in_exactly_one_share_and_the_shares_are_even():
    shares = all_shares(4)
    counts = [sum(share.owns(key) for key in KEYS) for share in shares]
    assert sum(counts) == len(KEYS)
    assert all(key for key in KEYS if sum(s.owns(key) for s in shares) == 1)
    assert min(counts) > 200 and max(counts) < 300  # 250 each, give or take


def test_a_domains_share_is_the_same_in_every_run():
    # Not Python's salted hash: a subprocess with another hash seed agrees.
    import subprocess
    import sys

    code = "from epum.partitions import share_of; print(share_of(('alice', 'pool'), 7))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(other.stdout) == share_of(("alice", "pool"), 7)


@pytest.mark.parametrize("args", [(0, 0), (1, 1), (-1, 2), (True, 2), (0, 2.0), ("0", 2)], ids=repr)
def test_a_bad_share_is_refused_naming_it(args):
    with pytest.raises(ValueError, match="share"):
        Share(*args)


def test_one_share_owns_everything():
    assert all(Share(0, 1).owns(key) for key in KEYS)
    assert [str(s) for s in all_shares(3)] == ["1/3", "2/3", "3/3"]


def _facade(conf: dict, provisioner: FakeProvisioner) -> EPUManagement:
    facade = EPUManagement(conf, FakeNotifier(), provisioner, None, FakeDTRS())
    facade.initialize()
    facade.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
    return facade


def test_external_decide_runs_every_share_and_each_decides_only_its_own():
    provisioner = FakeProvisioner()
    facade = _facade({"_external_decide_invocations": True, "decider_partitions": 3}, provisioner)
    try:
        for n in range(9):
            facade.msg_add_domain("alice", f"d{n}", "simple", {"engine_conf": {"preserve_n": 1}})
        facade._run_decisions()
        assert len(provisioner.provisioned_ids()) == 9
        assert len(facade.deciders) == 3
        for decider in facade.deciders:
            assert all(decider.share.owns(key) for key in decider._engines)
        assert sum(len(d._engines) for d in facade.deciders) == 9
    finally:
        facade.shutdown()


def test_the_memory_store_elects_a_leader_per_share():
    provisioner = FakeProvisioner()
    conf = {"decider_partitions": 3, "decider_loop_interval": 0.1, "doctor_loop_interval": 3600}
    facade = _facade(conf, provisioner)
    try:
        wait_until(lambda: all(d.is_leader for d in facade.deciders), 10)
        for n in range(6):
            facade.msg_add_domain("alice", f"d{n}", "simple", {"engine_conf": {"preserve_n": 2}})
        wait_until(lambda: len(provisioner.provisioned_ids()) == 12, 10)
        assert {d.term.role for d in facade.deciders} == {"decider/0", "decider/1", "decider/2"}
    finally:
        facade.shutdown()
