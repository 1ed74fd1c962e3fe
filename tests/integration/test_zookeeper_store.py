"""The ZooKeeper store beyond the shared contract: several workers on one
tree, the instance index, the cache, ACLs, lost answers and outages.

Every test runs against the real server of ``tests/zk_server.py`` in a base
path of its own.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NoAuthError

from epum.errors import BadRequestError, StoreUnavailableError, WriteConflictError
from epum.instances import Instance
from epum.settings import ZooKeeperSettings
from epum.states import InstanceHealthState, InstanceState
from epum.store.zookeeper import ZooKeeperEPUMStore
from tests.kit import wait_until
from tests.zk_server import ZooKeeperServer

pytestmark = pytest.mark.zookeeper

CONFIG = {"general": {"engine_class": "simplest"}, "engine_conf": {"preserve_n": 2}, "health": {}}


def record(instance_id: str) -> Instance:
    return Instance(
        instance_id=instance_id,
        launch_id="l-" + instance_id,
        site="site1",
        allocation="small",
        state=InstanceState.REQUESTING,
        state_time=100.0,
    )


@contextlib.contextmanager
def counting_reads(store: ZooKeeperEPUMStore):
    """Count the reads this thread sends to the server through ``store``."""
    client = store.kazoo_client
    me = threading.current_thread()
    counts: collections.Counter[str] = collections.Counter()
    names = ("get_async", "get_children_async", "exists_async")
    for name in names:
        original = getattr(client, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            if threading.current_thread() is me:
                counts[_name] += 1
            return _original(*args, **kwargs)

        setattr(client, name, counted)
    try:
        yield counts
    finally:
        for name in names:
            delattr(client, name)


def test_two_workers_race_for_one_record(zk_store_factory):
    a = zk_store_factory(worker_name="a")
    b = zk_store_factory(worker_name="b")
    a.add_domain("alice", "dom", CONFIG).add_instance(record("i1"))
    domains = {"a": a.get_domain_for_instance_id("i1"), "b": b.get_domain_for_instance_id("i1")}
    reads = {name: d.get_instance("i1") for name, d in domains.items()}
    changes = {"a": {"health": InstanceHealthState.OK}, "b": {"state": InstanceState.PENDING}}
    barrier = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def write(name: str) -> None:
        barrier.wait()
        try:
            domains[name].update_instance(reads[name].replace(**changes[name]))
            outcome[name] = "won"
        except WriteConflictError:
            outcome[name] = "lost"

    threads = [threading.Thread(target=write, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcome.values()) == ["lost", "won"]

    loser = next(n for n, o in outcome.items() if o == "lost")
    fresh = domains[loser].get_instance("i1")
    assert fresh.version == reads[loser].version + 1
    domains[loser].update_instance(fresh.replace(**changes[loser]))
    final = a.get_domain("alice", "dom").get_instance("i1")
    assert final.health == InstanceHealthState.OK
    assert final.state == InstanceState.PENDING
    assert final.version == reads[loser].version + 2


def test_the_cache_finds_an_instance_with_no_read_the_index_with_one(zk_store_factory):
    store = zk_store_factory()
    store.add_domain("owner-0", "dom", CONFIG).add_instance(record("needle"))

    def reads_to_find_the_needle(finder) -> int:
        with counting_reads(finder) as counts:
            domain = finder.get_domain_for_instance_id("needle")
        assert domain is not None and domain.key == ("owner-0", "dom")
        return sum(counts.values())

    assert reads_to_find_the_needle(store) <= 1  # the cache may not show it yet
    wait_until(lambda: reads_to_find_the_needle(store) == 0, 5, what="the cache showing it")
    for i in range(1, 41):
        store.add_domain(f"owner-{i}", "dom", CONFIG).add_instance(record(f"hay-{i}"))
    fresh = zk_store_factory(worker_name="fresh")
    assert reads_to_find_the_needle(fresh) == 0, "a worker that never looked it up"
    # a record the cache does not show (yet) is found through its index
    # entry: one read however many domains there are
    fresh._instance_domains.forget("needle")
    assert reads_to_find_the_needle(fresh) == 1
    with counting_reads(store) as counts:
        assert store.get_domain_for_instance_id("nowhere") is None
    assert sum(counts.values()) == 1


def test_a_config_section_unchanged_is_decoded_once(zk_store_factory):
    decoded = []

    def counting(section: dict) -> int:
        decoded.append(section["preserve_n"])
        return section["preserve_n"]

    domain = zk_store_factory().add_domain("alice", "dom", CONFIG)
    assert [domain.get_config_as("engine_conf", counting) for _ in range(3)] == [2, 2, 2]
    domain.update_config({"engine_conf": {"preserve_n": 4}})
    assert [domain.get_config_as("engine_conf", counting) for _ in range(3)] == [4, 4, 4]
    assert decoded == [2, 4]


def test_a_value_too_large_for_zookeeper_is_refused_before_it_is_sent(zk_store_factory):
    """ZooKeeper drops the session of a client that sends more than jute.maxbuffer; the
    store refuses such a value with a BadRequestError and its session lives on."""
    store = zk_store_factory()
    domain = store.add_domain("alice", "dom", CONFIG)
    session = store.kazoo_client.client_id
    huge = "x" * 1_100_000
    with pytest.raises(BadRequestError, match=r"jute\.maxbuffer"):
        store.add_domain_definition("big", {"engine_conf": {"v": huge}})
    with pytest.raises(BadRequestError, match=r"jute\.maxbuffer"):
        domain.add_instance(record("i1").replace(hostname=huge))
    assert store.kazoo_client.client_id == session
    assert store.list_domain_definitions() == []
    assert domain.get_instances() == []
    domain.add_instance(record("i2"))
    assert [i.instance_id for i in domain.get_instances()] == ["i2"]


def test_a_remembered_instance_removed_by_another_worker_is_not_found(zk_store_factory):
    finder, remover = zk_store_factory(worker_name="finder"), zk_store_factory()
    remover.add_domain("alice", "dom", CONFIG).add_instance(record("i1"))
    assert finder.get_domain_for_instance_id("i1").key == ("alice", "dom")
    remover.get_domain("alice", "dom").remove_instance("i1")
    assert wait_until(lambda: finder.get_domain_for_instance_id("i1") is None, 5)


def test_a_decider_pass_reads_nothing_from_the_server(zk_store_factory):
    writer = zk_store_factory(worker_name="writer")
    decider = zk_store_factory(worker_name="decider")
    for d in range(10):
        domain = writer.add_domain("alice", f"dom-{d}", CONFIG)
        for i in range(5):
            domain.add_instance(record(f"i-{d}-{i}"))

    def decider_sees_everything() -> bool:
        domains = decider.get_all_domains()
        return len(domains) == 10 and all(len(d.get_instances()) == 5 for d in domains)

    wait_until(decider_sees_everything)
    with counting_reads(decider) as counts:
        for domain in decider.get_all_domains():
            domain.get_all_config()
            domain.get_versioned_config("engine_conf")
            domain.is_removed()
            domain.get_instances()
            domain.get_domain_sensor_data()
            domain.get_subscribers()
    assert sum(counts.values()) == 0, counts
    # Listing an owner's domains answers RPCs: one read, fresh from the server.
    with counting_reads(decider) as counts:
        assert len(decider.list_domains_by_owner("alice")) == 10
    assert sum(counts.values()) == 1

    # A change by another worker reaches the cache through its watch.
    writer.get_domain("alice", "dom-3").update_config({"engine_conf": {"preserve_n": 9}})
    wait_until(
        lambda: (
            decider.get_domain("alice", "dom-3").get_all_config()["engine_conf"]["preserve_n"] == 9
        )
    )


def test_another_workers_write_moves_the_change_stamp_once_the_cache_shows_it(
    zk_store_factory,
):
    writer = zk_store_factory(worker_name="writer")
    reader = zk_store_factory(worker_name="reader")
    writer.add_domain("alice", "dom", CONFIG).add_instance(record("i1"))
    wait_until(lambda: reader.get_domain("alice", "dom") is not None)
    domain = reader.get_domain("alice", "dom")
    wait_until(lambda: len(domain.get_instances()) == 1)
    stamp = domain.change_stamp()
    with counting_reads(reader) as counts:
        assert domain.change_stamp() == stamp  # taken from the cache: no read
    assert sum(counts.values()) == 0
    theirs = writer.get_domain("alice", "dom")
    theirs.update_instance(theirs.get_instance("i1").replace(hostname="h"))
    wait_until(lambda: domain.change_stamp() != stamp)
    assert domain.get_instances()[0].hostname == "h"


def test_each_worker_reads_its_own_writes(zk_store_factory):
    store = zk_store_factory()
    domain = store.add_domain("alice", "dom", CONFIG)
    added = domain.add_instance(record("i1"))
    assert [i.version for i in domain.get_instances()] == [added.version]
    current = added
    for n in range(30):
        current = domain.update_instance(current.replace(update_counter=n))
        assert [(i.update_counter, i.version) for i in domain.get_instances()] == [
            (n, current.version)
        ]
        domain.update_config({"engine_conf": {"n": n}})
        assert domain.get_all_config()["engine_conf"]["n"] == n
    store.remove_domain("alice", "dom")
    assert store.get_domain("alice", "dom") is None
    assert store.get_all_domains() == []
    again = store.add_domain("alice", "dom", {"engine_conf": {"fresh": True}})
    assert again.get_all_config()["engine_conf"] == {"fresh": True}
    assert again.get_instances() == []


def test_change_listener_hears_every_worker(zk_store_factory):
    writer = zk_store_factory(worker_name="writer")
    listener_store = zk_store_factory(worker_name="listener")
    heard: queue.Queue[tuple[str, str]] = queue.Queue()
    listener_store.add_change_listener(lambda owner, domain_id: heard.put((owner, domain_id)))

    def expect(action) -> None:
        while not heard.empty():
            heard.get_nowait()
        action()
        assert heard.get(timeout=5) == ("alice", "dom/1")

    domain = writer.add_domain("alice", "dom/1", CONFIG)
    assert heard.get(timeout=5) == ("alice", "dom/1")
    expect(lambda: domain.add_instance(record("i1")))
    expect(lambda: domain.update_instance(domain.get_instance("i1").replace(hostname="h")))
    expect(lambda: domain.update_config({"engine_conf": {"preserve_n": 3}}))
    expect(domain.mark_removed)
    expect(lambda: writer.remove_domain("alice", "dom/1"))


def test_names_with_slashes_and_dots_round_trip(zk_store_factory):
    store = zk_store_factory()
    domain = store.add_domain("a/b c", "..", CONFIG)
    domain.add_instance(record("x/y%z"))
    store.add_domain_definition(".", {"general": {}})
    assert store.list_domains_by_owner("a/b c") == [".."]
    assert [d.key for d in store.get_all_domains()] == [("a/b c", "..")]
    assert store.get_domain_for_instance_id("x/y%z").key == ("a/b c", "..")
    assert [i.instance_id for i in domain.get_instances()] == ["x/y%z"]
    assert store.list_domain_definitions() == ["."]


def test_digest_acl_keeps_strangers_out(zk_store_factory, zk_server, zk_base_path):
    store = zk_store_factory(username="epum", password="s3cret", worker_name="owner")
    domain = store.add_domain("alice", "dom", CONFIG)
    domain.add_instance(record("i1"))
    domain.mark_removed()
    store.add_domain_definition("def", {"general": {}})
    elected = threading.Event()

    class Leader:
        def inaugurate(self, term):
            elected.set()
            term.wait()

    store.contend_decider(Leader())
    assert elected.wait(10)

    # The same identity elsewhere sees everything.
    friend = zk_store_factory(username="epum", password="s3cret", worker_name="friend")
    wait_until(lambda: friend.get_domain_for_instance_id("i1") is not None)
    assert friend.get_domain("alice", "dom").is_removed()

    base = zk_base_path
    dom = f"{base}/domains/alice/dom"
    seat = store.kazoo_client.get_children(f"{base}/elections/decider")[0]
    protected = [
        base,
        f"{base}/definitions",
        f"{base}/definitions/def",
        f"{base}/domains",
        f"{base}/domains/alice",
        dom,
        f"{dom}/engine_conf",
        f"{dom}/removed",
        f"{dom}/subscribers",
        f"{dom}/instances",
        f"{dom}/instances/i1",
        f"{base}/index",
        f"{base}/index/i1",
        f"{base}/elections/decider",
        f"{base}/elections/decider/{seat}",
    ]
    for path in protected:
        acls, _ = store.kazoo_client.get_acls(path)
        assert [(a.id.scheme, a.id.id.split(":")[0], a.perms) for a in acls] == [
            ("digest", "epum", 31)
        ], path

    stranger = KazooClient(zk_server.hosts)
    impostor = KazooClient(zk_server.hosts, auth_data=[("digest", "epum:guess")])
    for client in (stranger, impostor):
        client.start(timeout=10)
        try:
            for path in protected:
                with pytest.raises(NoAuthError):
                    client.get(path)
            with pytest.raises(NoAuthError):
                client.get_children(f"{base}/domains")
            with pytest.raises(NoAuthError):
                client.set(f"{dom}/instances/i1", b"{}")
            with pytest.raises(NoAuthError):
                client.create(f"{dom}/instances/evil", b"{}")
            with pytest.raises(NoAuthError):
                client.create(f"{base}/domains/mallory", b"")
            with pytest.raises(NoAuthError):
                client.delete(f"{base}/index/i1")
            with pytest.raises(NoAuthError):
                client.delete(f"{base}/elections/decider/{seat}")
        finally:
            client.stop()
            client.close()

    # A store without the right credentials refuses to start, loudly.
    for creds in ({}, {"username": "epum", "password": "guess"}):
        intruder = ZooKeeperEPUMStore(
            ZooKeeperSettings(hosts=zk_server.hosts, path=base, timeout=5, **creds)
        )
        with pytest.raises(StoreUnavailableError, match="credentials"):
            intruder.initialize()
    assert store.get_domain("alice", "dom").get_instance("i1") is not None


def lose_answers(store: ZooKeeperEPUMStore, method: str, times: int = 1) -> list[int]:
    """Make the next ``times`` calls of ``client.<method>`` land and then
    report ConnectionLoss, as when the connection breaks before the answer."""
    client = store.kazoo_client
    original = getattr(client, method)
    left = [times]

    def landed_but_lost(*args, **kwargs):
        result = original(*args, **kwargs)
        if left[0] <= 0:
            return result
        left[0] -= 1
        result.get(timeout=5)  # the request did its work on the server
        lost = client.handler.async_result()
        lost.set_exception(ConnectionLoss())
        return lost

    setattr(client, method, landed_but_lost)
    return left


def lose_commit_answers(store: ZooKeeperEPUMStore, times: int = 1) -> list[int]:
    """Like ``lose_answers`` for the next ``times`` transaction commits."""
    client = store.kazoo_client
    original = client.transaction
    left = [times]

    def transaction():
        txn = original()
        commit_async = txn.commit_async

        def landed_but_lost():
            result = commit_async()
            if left[0] <= 0:
                return result
            left[0] -= 1
            result.get(timeout=5)
            lost = client.handler.async_result()
            lost.set_exception(ConnectionLoss())
            return lost

        txn.commit_async = landed_but_lost
        return txn

    client.transaction = transaction
    return left


def test_writes_retried_after_a_lost_answer_succeed_once(zk_store_factory):
    store = zk_store_factory()
    other = zk_store_factory(worker_name="other")

    left = lose_commit_answers(store)
    domain = store.add_domain("alice", "dom", CONFIG)
    assert left == [0]
    lose_commit_answers(store)
    added = domain.add_instance(record("i1"))
    assert added.version == 0
    assert [i.instance_id for i in domain.get_instances()] == ["i1"]
    assert store.get_domain_for_instance_id("i1").key == ("alice", "dom")

    left = lose_answers(store, "set_async")
    updated = domain.update_instance(added.replace(hostname="h1"))
    assert left == [0]
    assert updated.version == added.version + 1
    assert domain.get_instance("i1").hostname == "h1"

    left = lose_answers(store, "create_async")
    store.add_domain_definition("def", {"x": 1})
    assert left == [0]
    left = lose_answers(store, "delete_async")
    store.remove_domain_definition("def")
    assert left == [0]

    # Someone else's record is still a conflict, retried or not.
    with pytest.raises(WriteConflictError):
        other.get_domain("alice", "dom").add_instance(record("i1"))
    other_domain = other.add_domain("bob", "dom", CONFIG)
    left = lose_commit_answers(other)
    with pytest.raises(WriteConflictError):
        other_domain.add_instance(record("i1"))
    assert left == [0]


def test_an_unreachable_zookeeper_fails_calls_in_bounded_time(zk_proxy, zk_store_factory):
    store = zk_store_factory(hosts=zk_proxy.hosts, timeout=1.5)
    domain = store.add_domain("alice", "dom", CONFIG)
    added = domain.add_instance(record("i1"))
    wait_until(lambda: len(domain.get_instances()) == 1)
    zk_proxy.block()
    zk_proxy.cut()
    try:
        for call in (
            lambda: domain.get_instance("i1"),
            lambda: domain.update_instance(added.replace(hostname="h")),
            lambda: store.add_domain("alice", "dom2", CONFIG),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                call()
            assert time.monotonic() - started < 3.0
        # The cache still answers, with what it last saw.
        assert [d.key for d in store.get_all_domains()] == [("alice", "dom")]
    finally:
        zk_proxy.unblock()
    # Back in business once ZooKeeper is reachable again (a new session
    # if the old one expired meanwhile).
    wait_until(lambda: store.kazoo_client.connected, timeout=10)
    current = domain.get_instance("i1")
    domain.update_instance(current.replace(hostname="after"))
    assert domain.get_instance("i1").hostname == "after"


@pytest.fixture
def private_zk_server():
    """A server of this test's own, free to restart and pause."""
    server = ZooKeeperServer(tick_time_ms=500)
    server.start()
    yield server
    server.close()


def test_a_server_restart_keeps_the_session_the_data_and_the_leader(private_zk_server):
    store = ZooKeeperEPUMStore(
        ZooKeeperSettings(hosts=private_zk_server.hosts, path="/epum", timeout=6.0),
        worker_name="solo",
    )
    store.initialize()
    try:
        terms = []

        class Leader:
            def inaugurate(self, term):
                terms.append(term)
                term.wait()

        store.contend_decider(Leader())
        wait_until(lambda: len(terms) == 1)
        domain = store.add_domain("alice", "dom", CONFIG)
        domain.add_instance(record("i1"))
        session = store.kazoo_client.client_id

        private_zk_server.restart()
        wait_until(lambda: len(terms) == 2, timeout=15)
        assert store.kazoo_client.client_id == session
        # The same seat and session, but a new term: the old one stays ended.
        first, second = terms
        assert first.ended and not second.ended
        assert first.seat == second.seat and first.seat.startswith("/epum/elections/decider/")
        assert first.session == second.session == session[0]
        assert first.identity != second.identity
        assert domain.get_instance("i1").instance_id == "i1"

        # A stalled server holds calls up until it resumes.
        private_zk_server.pause()
        answers: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: answers.put(domain.get_instance("i1")), daemon=True).start()
        with pytest.raises(queue.Empty):
            answers.get(timeout=0.5)
        private_zk_server.resume()
        assert answers.get(timeout=5).instance_id == "i1"
    finally:
        store.shutdown()
