"""Stored data epum did not write: a CorruptDataError naming its znode, not a BadRequestError."""

from __future__ import annotations

import re

import pytest

from epum.errors import CorruptDataError
from epum.instances import Instance
from tests.kit import wait_until

pytestmark = pytest.mark.zookeeper

CONFIG = {"general": {"engine_class": "simplest"}, "engine_conf": {}, "health": {}}


def record(instance_id: str) -> Instance:
    return Instance(
        instance_id=instance_id, launch_id="l", site="s", allocation="a", state="x", state_time=1.0
    )


def raises_corrupt(call, match: str) -> bool:
    """True once ``call()`` raises CorruptDataError matching ``match``."""
    try:
        call()
    except CorruptDataError as exc:
        assert match in str(exc), str(exc)
        return True
    return False


@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"token": "t"}', b"[1, 2]"], ids=["garbage", "no-definition", "list"]
)
def test_a_corrupt_definition_names_its_znode(zk_store_factory, raw):
    store = zk_store_factory()
    store.add_domain_definition("d1", {})
    path = f"{store.base_path}/definitions/d1"
    store.kazoo_client.set(path, raw)
    # a replace reads the server; a read sees the change once the cache has it
    with pytest.raises(CorruptDataError, match=re.escape(path)):
        store.update_domain_definition("d1", {"x": 1})
    wait_until(lambda: raises_corrupt(lambda: store.get_domain_definition("d1"), path))


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe", b"[1]", b'{"instance_id": "i1"}'], ids=["bytes", "list", "partial"]
)
def test_a_corrupt_record_names_its_znode(zk_store_factory, raw):
    store = zk_store_factory()
    domain = store.add_domain("alice", "dom", CONFIG)
    domain.add_instance(record("i1"))
    path = domain.instance_path("i1")
    store.kazoo_client.set(path, raw)
    with pytest.raises(CorruptDataError, match=re.escape(path)):
        domain.get_instance("i1")
    # The cached list sees it once the cache has the change.
    wait_until(lambda: raises_corrupt(domain.get_instances, path))


def test_a_corrupt_index_entry_names_its_znode(zk_store_factory):
    writer = zk_store_factory(worker_name="writer")
    writer.add_domain("alice", "dom", CONFIG).add_instance(record("i1"))
    path = f"{writer.base_path}/index/i1"
    writer.kazoo_client.set(path, b'{"domain_id": "dom"}')
    reader = zk_store_factory(worker_name="reader")
    # the cache finds i1 without the index; one it does not show reads the entry
    reader._instance_domains.forget("i1")
    with pytest.raises(CorruptDataError, match=re.escape(f"{path} holds no 'owner'")):
        reader.get_domain_for_instance_id("i1")


def test_a_corrupt_config_section_names_its_znode(zk_store_factory):
    store = zk_store_factory()
    domain = store.add_domain("alice", "dom", CONFIG)
    path = f"{store.base_path}/domains/alice/dom/general"
    store.kazoo_client.set(path, b"nope")
    wait_until(lambda: raises_corrupt(domain.get_all_config, path))
    with pytest.raises(CorruptDataError, match=re.escape(path)):
        domain.update_config({"general": {"x": 1}})
