"""``update_instance_with_retry``: a first read from a lagging copy never wins a race."""

from __future__ import annotations

from epum.instances import Instance
from epum.states import InstanceHealthState as H
from epum.states import InstanceState as S
from epum.store.base import update_instance_with_retry
from epum.store.memory import MemoryEPUMStore


def record(instance_id: str = "i1") -> Instance:
    return Instance(
        instance_id=instance_id,
        launch_id="l1",
        site="site",
        allocation="small",
        state=S.RUNNING,
        state_time=1.0,
        health=H.UNKNOWN,
    )


def domain_with_a_stale_copy():
    """A memory domain whose cached reads return the record as first added."""
    store = MemoryEPUMStore()
    store.initialize()
    domain = store.add_domain("alice", "dom", {})
    first = domain.add_instance(record())
    reads: list[str] = []

    def cached(instance_id: str) -> Instance | None:
        reads.append("cached")
        return first

    def server(instance_id: str, _read=domain.get_instance) -> Instance | None:
        reads.append("server")
        return _read(instance_id)

    domain.get_instance_cached = cached
    domain.get_instance = server
    domain.update_instance(first.replace(errors=["boom"]))  # behind the copy's back
    return domain, reads


def to_ok(current: Instance) -> Instance | None:
    return None if current.health == H.OK else current.replace(health=H.OK)


def test_a_write_judged_on_a_stale_copy_loses_and_is_redone_on_a_server_read():
    domain, reads = domain_with_a_stale_copy()
    before, after = update_instance_with_retry(domain, "i1", to_ok, cached_first=True)
    assert reads == ["cached", "server"]
    assert before.errors == ["boom"], "the retry starts from the record that won"
    assert after.health == H.OK and after.errors == ["boom"]


def test_without_cached_first_every_read_goes_to_the_server():
    domain, reads = domain_with_a_stale_copy()
    update_instance_with_retry(domain, "i1", to_ok)
    assert reads == ["server"]


def test_a_backend_without_a_copy_reads_the_record_itself():
    store = MemoryEPUMStore()
    store.initialize()
    domain = store.add_domain("alice", "dom", {})
    stored = domain.add_instance(record())
    assert domain.get_instance_cached("i1") == stored
    assert domain.get_instance_cached("nope") is None
