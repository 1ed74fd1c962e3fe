"""The store contract, part two: the same notifications, order and errors on every backend."""

from __future__ import annotations

import itertools
import threading

import pytest

from epum.errors import CorruptDataError, StoreUnavailableError
from epum.instances import Instance
from tests.store_backends import BACKENDS, make_store

CONFIG = {"general": {"engine_class": "simplest"}, "engine_conf": {"preserve_n": 2}, "health": {}}


@pytest.fixture(params=BACKENDS)
def store(request):
    return make_store(request.param, request)


def record(instance_id: str, **extra) -> Instance:
    return Instance(
        instance_id=instance_id,
        launch_id="l-" + instance_id,
        site="site1",
        allocation="small",
        state="200-REQUESTED",
        state_time=100.0,
        **extra,
    )


class Seen:
    """A change listener that records every ``(owner, domain_id)`` it is told."""

    def __init__(self, store):
        self.cond = threading.Condition()
        self.keys: list[tuple[str, str]] = []
        self.barriers = itertools.count()
        self.store = store
        store.add_change_listener(self)

    def __call__(self, owner: str, domain_id: str) -> None:
        with self.cond:
            self.keys.append((owner, domain_id))
            self.cond.notify_all()

    def wait(self, key: tuple[str, str]) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: key in self.keys, 10), f"{key} never notified"

    def barrier(self, *settle) -> None:
        """Return once every notification of writes made so far has arrived.

        A store's copy may apply a deep node of an earlier domain after a
        shallow node of a later one, so each domain in ``settle`` is read
        first: a read waits until the store's copy shows its writes. After
        that, notifications come in the order of the writes, so once a new
        domain's shows up, every earlier write's has too.
        """
        for domain in settle:
            domain.get_all_config()
        key = ("zz-barrier", f"b{next(self.barriers)}")
        self.store.add_domain(*key, CONFIG)
        self.wait(key)

    def forget(self) -> None:
        with self.cond:
            self.keys.clear()


def subscribed(domain):
    domain.add_subscriber("s1", "op1")


def with_record(domain):
    domain.add_instance(record("i1"))


def marked(domain):
    domain.mark_removed()


def nothing(domain):
    pass


def update_record(domain):
    got = domain.get_instance("i1")
    domain.update_instance(got.replace(state="600-RUNNING"))


#: (setup, the write): each write changes the domain, so listeners hear of it.
CHANGES = {
    "update_config": (nothing, lambda d: d.update_config({"engine_conf": {"preserve_n": 3}})),
    "mark_removed": (nothing, lambda d: d.mark_removed()),
    "add_subscriber": (nothing, lambda d: d.add_subscriber("s1", "op1")),
    "change_subscriber_op": (subscribed, lambda d: d.add_subscriber("s1", "op2")),
    "remove_subscriber": (subscribed, lambda d: d.remove_subscriber("s1")),
    "set_sensor_data": (nothing, lambda d: d.set_domain_sensor_data({"cpu": [1]})),
    "set_same_sensor_data": (nothing, lambda d: d.set_domain_sensor_data({})),
    "add_instance": (nothing, with_record),
    "update_instance": (with_record, update_record),
    "remove_instance": (with_record, lambda d: d.remove_instance("i1")),
}

#: (setup, the write): each write changes nothing, so nobody is told.
NO_CHANGES = {
    "empty_update_config": (nothing, lambda d: d.update_config({})),
    "mark_marked": (marked, lambda d: d.mark_removed()),
    "same_subscriber": (subscribed, lambda d: d.add_subscriber("s1", "op1")),
    "remove_absent_subscriber": (nothing, lambda d: d.remove_subscriber("nobody")),
    "remove_absent_instance": (nothing, lambda d: d.remove_instance("nope")),
}


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_every_change_to_a_domain_notifies(store, case):
    setup, write = CHANGES[case]
    seen = Seen(store)
    domain = store.add_domain("alice", "dom", CONFIG)
    setup(domain)
    seen.barrier(domain)
    seen.forget()
    write(domain)
    seen.wait(("alice", "dom"))


def test_removing_a_domain_notifies(store):
    seen = Seen(store)
    store.add_domain("alice", "dom", CONFIG)
    seen.barrier()
    seen.forget()
    store.remove_domain("alice", "dom")
    seen.wait(("alice", "dom"))


@pytest.mark.parametrize("case", sorted(NO_CHANGES))
def test_a_write_that_changes_nothing_notifies_no_one(store, case):
    setup, write = NO_CHANGES[case]
    seen = Seen(store)
    domain = store.add_domain("alice", "dom", CONFIG)
    setup(domain)
    seen.barrier(domain)
    seen.forget()
    write(domain)
    seen.barrier(domain)
    assert ("alice", "dom") not in seen.keys


def test_definitions_notify_no_one(store):
    seen = Seen(store)
    store.add_domain_definition("def1", {})
    store.update_domain_definition("def1", {"x": 1})
    store.remove_domain_definition("def1")
    seen.barrier()
    assert [k for k in seen.keys if k[0] != "zz-barrier"] == []


def test_lists_come_back_sorted_by_id(store):
    # "{" sorts after "0" but its quoted form ("%7B") before: the order is the ids'.
    for owner, domain_id in [("o{", "a0"), ("o0", "a{"), ("o0", "a0"), ("o{", "a{")]:
        store.add_domain(owner, domain_id, CONFIG)
    for definition_id in ["d{", "d5", "d0"]:
        store.add_domain_definition(definition_id, {})
    domain = store.get_domain("o0", "a0")
    for instance_id in ["i{", "i5", "i0", "i-"]:
        domain.add_instance(record(instance_id))

    assert [d.key for d in store.get_all_domains()] == [
        ("o0", "a0"),
        ("o0", "a{"),
        ("o{", "a0"),
        ("o{", "a{"),
    ]
    assert store.list_domains_by_owner("o{") == ["a0", "a{"]
    assert store.list_domain_definitions() == ["d0", "d5", "d{"]
    assert [i.instance_id for i in domain.get_instances()] == ["i-", "i0", "i5", "i{"]


def test_a_store_shut_down_is_unavailable(store):
    domain = store.add_domain("alice", "dom", CONFIG)
    domain.add_instance(record("i1"))
    store.shutdown()
    calls = [
        store.initialize,
        store.list_domain_definitions,
        lambda: store.get_domain_definition("d1"),
        lambda: store.add_domain_definition("d1", {}),
        lambda: store.add_domain("alice", "dom2", CONFIG),
        lambda: store.get_domain("alice", "dom"),
        store.get_all_domains,
        lambda: store.get_domain_for_instance_id("i1"),
        domain.get_all_config,
        domain.get_instances,
        lambda: domain.get_instance("i1"),
        lambda: domain.set_domain_sensor_data({}),
        lambda: domain.add_instance(record("i2")),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailableError, match="shut down"):
            call()


def test_a_value_json_cannot_carry_is_refused_before_anything_is_stored(store):
    unstorable = {"x": {1, 2}}
    with pytest.raises(CorruptDataError, match="definition d1 cannot be stored"):
        store.add_domain_definition("d1", unstorable)
    assert store.get_domain_definition("d1") is None
    with pytest.raises(CorruptDataError, match="cannot be stored"):
        store.add_domain("alice", "bad", {"general": unstorable})
    assert store.get_domain("alice", "bad") is None

    store.add_domain_definition("d2", {})
    with pytest.raises(CorruptDataError, match="cannot be stored"):
        store.update_domain_definition("d2", unstorable)
    assert store.get_domain_definition("d2") == {}

    domain = store.add_domain("alice", "dom", CONFIG)
    with pytest.raises(CorruptDataError, match="config cannot be stored"):
        domain.update_config({"engine_conf": unstorable})
    with pytest.raises(CorruptDataError, match="sensor data cannot be stored"):
        domain.set_domain_sensor_data(unstorable)
    with pytest.raises(CorruptDataError, match="instance i1 cannot be stored"):
        domain.add_instance(record("i1", extravars=unstorable))
    good = domain.add_instance(record("i2"))
    with pytest.raises(CorruptDataError, match="instance i2 cannot be stored"):
        domain.update_instance(good.replace(extravars=unstorable))

    assert domain.get_all_config() == CONFIG
    assert domain.get_domain_sensor_data() == {}
    assert [i.instance_id for i in domain.get_instances()] == ["i2"]
    assert domain.get_instance("i2").version == 0
