"""The ZooKeeper store's parts that need no server: backoff, settings, codec, paths."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from epum.errors import BadRequestError, ConfigError, CorruptDataError, StoreUnavailableError
from epum.settings import Settings, ZooKeeperSettings
from epum.store import MemoryEPUMStore, get_epum_store
from epum.store.codec import dump, field, load
from epum.store.zk_index import InstanceDomains
from epum.store.zk_paths import ZkPaths, quote_name, unquote_name
from epum.store.zk_session import (
    MIN_RECONNECT_DELAY,
    RECONNECT_FRACTION,
    ZkSession,
    reconnect_max_delay,
)
from epum.store.zookeeper import ZooKeeperEPUMStore


@pytest.mark.parametrize(
    ("timeout", "cap"),
    [(10.0, 1.25), (4.0, 0.5), (2.0, 0.25), (80.0, 10.0), (0.5, MIN_RECONNECT_DELAY)],
)
def test_the_reconnect_backoff_is_a_fraction_of_the_session_timeout(timeout, cap):
    assert reconnect_max_delay(timeout) == pytest.approx(cap)


def test_a_cut_shorter_than_the_session_is_retried_several_times_before_it_expires():
    # The case seen in the field: a 2 s cut of a 4 s session.  With the
    # backoff at its cap the client still tries about every timeout/8.
    for timeout in (1.0, 4.0, 10.0, 30.0):
        assert reconnect_max_delay(timeout) <= timeout * RECONNECT_FRACTION + 1e-9
        assert reconnect_max_delay(timeout) >= MIN_RECONNECT_DELAY
        assert reconnect_max_delay(timeout) < 2.0 or timeout > 16


@pytest.mark.parametrize("timeout", [0, -1.0, "10", None, True])
def test_a_bad_session_timeout_is_a_config_error(timeout):
    with pytest.raises(ConfigError, match="timeout"):
        reconnect_max_delay(timeout)


def test_the_session_gives_kazoo_the_derived_cap():
    session = ZkSession(ZooKeeperSettings(hosts="127.0.0.1:1", timeout=4.0))
    try:
        assert session.connection_retry["max_delay"] == pytest.approx(0.5)
        assert session.timeout == 4.0
    finally:
        session.client.close()


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (
            SimpleNamespace(hosts="", path="/epum", timeout=1.0, username=None, password=None),
            "hosts",
        ),
        (
            SimpleNamespace(hosts="h:1", path="/epum", timeout=1.0, username="u", password=None),
            "password",
        ),
    ],
)
def test_a_store_that_cannot_be_built_is_a_config_error(settings, match):
    # The settings tree refuses these already; the store checks on its own too.
    with pytest.raises(ConfigError, match=match):
        ZooKeeperEPUMStore(settings)


def test_settings_refuse_an_unusable_ensemble():
    with pytest.raises(ConfigError):
        ZooKeeperEPUMStore(ZooKeeperSettings(hosts=""))
    with pytest.raises(ConfigError):
        ZooKeeperEPUMStore(ZooKeeperSettings(username="epum"))


def test_an_unstarted_store_is_unavailable_and_built_from_its_settings():
    store = ZooKeeperEPUMStore(
        ZooKeeperSettings(hosts="127.0.0.1:1", path="/x/y/", timeout=3.0), worker_name="w1"
    )
    try:
        assert store.base_path == "/x/y"
        assert store.identifier.startswith("w1@")
        with pytest.raises(StoreUnavailableError, match="not initialized"):
            store.list_domain_definitions()
        store.shutdown()
        with pytest.raises(StoreUnavailableError, match="shut down"):
            store.initialize()
    finally:
        store.kazoo_client.close()


def test_get_epum_store_builds_the_configured_backend():
    assert isinstance(get_epum_store(Settings()), MemoryEPUMStore)
    tree = Settings().replace(
        epum=Settings().epum.__class__(persistence_type="zookeeper"),
        zookeeper=ZooKeeperSettings(hosts="127.0.0.1:1", path="/sys1"),
        worker_name="worker-7",
    )
    store = get_epum_store(tree)
    try:
        assert isinstance(store, ZooKeeperEPUMStore)
        assert store.base_path == "/sys1"
        assert store.identifier.startswith("worker-7@")
    finally:
        store.kazoo_client.close()


def test_a_value_json_cannot_carry_cannot_be_stored():
    with pytest.raises(CorruptDataError, match="sensor data cannot be stored"):
        dump({"x": {1, 2}}, "sensor data")
    assert load(dump({"b": [1, None], "a": "é"}), "/p") == {"a": "é", "b": [1, None]}
    assert load(b"", "/p") is None


def test_stored_bytes_that_are_not_what_epum_wrote_name_their_path():
    with pytest.raises(CorruptDataError, match="/epum/definitions/d1"):
        load(b"{not json", "/epum/definitions/d1")
    with pytest.raises(CorruptDataError, match="/epum/index/i1 holds no 'owner'"):
        field({"domain_id": "d"}, "owner", "/epum/index/i1")
    with pytest.raises(CorruptDataError, match="/epum/index/i1"):
        field([1], "owner", "/epum/index/i1")
    assert field({"owner": "o"}, "owner", "/p") == "o"


def test_paths_quote_every_id_and_map_back_to_their_domain():
    paths = ZkPaths("/epum/")
    assert paths.base == "/epum"
    assert paths.parent == "/"
    assert paths.domain("a/b", "..") == "/epum/domains/a%2Fb/%2E%2E"
    assert paths.domain_of(paths.domain("a/b", "..") + "/instances/x") == ("a/b", "..")
    assert paths.domain_of(paths.owner("a/b")) is None
    assert paths.domain_of("/elsewhere/domains/a/b") is None
    assert ZkPaths("/").base == "/"
    assert ZkPaths("/").definitions == "/definitions"
    assert ZkPaths("/a/b").parent == "/a"
    assert unquote_name(quote_name("x y%z")) == "x y%z"
    with pytest.raises(BadRequestError, match="invalid name"):
        quote_name("")


def test_the_instance_map_follows_record_paths_only():
    domains = InstanceDomains(ZkPaths("/epum"))
    domains.follow("/epum/domains/a%2Fb/d%20x/instances/i%2F1", True)
    domains.follow("/epum/domains/a%2Fb/d%20x/instances/i2", True)
    for other in (
        "/epum/domains/a%2Fb/d%20x",
        "/epum/domains/a%2Fb/d%20x/health",
        "/epum/domains/a%2Fb/d%20x/instances",
        "/epum/index/i3",
        "/other/domains/a/d/instances/i4",
    ):
        domains.follow(other, True)
    assert len(domains) == 2
    assert domains.get("i/1") == ("a/b", "d x")
    assert domains.get("i/1") is domains.get("i2"), "one key per domain"
    domains.follow("/epum/domains/a%2Fb/d%20x/instances/i%2F1", False)
    assert domains.get("i/1") is None and domains.get("i2") == ("a/b", "d x")


def test_the_instance_map_keeps_learned_entries_only_below_its_bound():
    domains = InstanceDomains(ZkPaths("/"), learned_kept=2)
    domains.learn("i1", ("o", "d"))
    domains.learn("i2", ("o", "d"))
    domains.learn("i3", ("o", "d"))
    assert (domains.get("i2"), domains.get("i3")) == (("o", "d"), None)
    domains.follow("/domains/o/d/instances/i3", True)  # the cache's records always
    assert domains.get("i3") == ("o", "d")
    domains.forget("i1")
    assert domains.get("i1") is None and len(domains) == 2
