"""Config loading: merge order, defaults, environment overrides, validation, unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from epum.config import ENV_OVERRIDES, ConfigError, config_from_dict, deep_merge, load_config
from epum.messaging.connection import broker_url, mask_url
from epum.settings import StatsdSettings, ZooKeeperSettings, settings_from_initial_conf

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_cover_every_protocol_key():
    cfg = config_from_dict({}, env={})
    assert (cfg.amqp.host, cfg.amqp.port, cfg.amqp.username, cfg.amqp.vhost) == (
        "localhost",
        5672,
        "guest",
        "/",
    )
    assert cfg.amqp.heartbeat == 30
    assert cfg.amqp.sysname is None
    assert cfg.amqp.exchange == "default_dashi_exchange"
    assert cfg.amqp.prefetch == 16
    assert (cfg.zookeeper.hosts, cfg.zookeeper.path, cfg.zookeeper.timeout) == (
        "localhost:2181",
        "/epum",
        10.0,
    )
    e = cfg.epum
    assert e.service_name == "epu_management_service"
    assert (e.provisioner_service_name, e.dtrs_service_name) == ("provisioner", "dtrs")
    assert e.default_user is None
    assert e.persistence_type == "memory"
    assert e.initial_definitions == {} and e.initial_domains == {}
    assert e.provisioner_vars == {}
    assert (e.decider_loop_interval, e.record_reaping_max_age) == (5.0, 7200.0)
    assert e.allowed_engine_prefixes == ()
    assert cfg.statsd is None
    assert cfg.logging is None and cfg.log_level is None
    assert cfg.worker_name
    assert cfg.warnings == ()


def test_files_merge_in_order_deeply(tmp_path):
    base = write(
        tmp_path,
        "base.yaml",
        """
server:
  amqp: {host: rabbit, port: 5673, password: secret}
epumanagement:
  provisioner_vars: {a: 1, nested: {x: 1, y: 2}}
  allowed_engine_prefixes: [one, two]
""",
    )
    site = write(
        tmp_path,
        "site.yaml",
        """
server:
  amqp: {port: 5674}
epumanagement:
  provisioner_vars: {b: 2, nested: {y: 3}}
  allowed_engine_prefixes: [three]
statsd: {}
""",
    )
    cfg = load_config([base, site], env={})
    assert (cfg.amqp.host, cfg.amqp.port, cfg.amqp.password) == ("rabbit", 5674, "secret")
    assert cfg.epum.provisioner_vars == {"a": 1, "b": 2, "nested": {"x": 1, "y": 3}}
    assert cfg.epum.allowed_engine_prefixes == ("three",)  # lists are replaced whole
    assert cfg.statsd == StatsdSettings(host="localhost", port=8125, prefix="epum")


def test_deep_merge_does_not_touch_its_inputs():
    base = {"a": {"b": 1}}
    over = {"a": {"c": 2}}
    assert deep_merge(base, over) == {"a": {"b": 1, "c": 2}}
    assert base == {"a": {"b": 1}} and over == {"a": {"c": 2}}


def test_environment_overrides_win_over_files(tmp_path):
    path = write(tmp_path, "c.yaml", "server: {amqp: {url: 'amqp://a:b@file//'}}\n")
    env = {
        "EPUM_AMQP_URL": "amqp://u:p@env:5672/vh",
        "EPUM_SYSNAME": "sys1",
        "EPUM_ZOOKEEPER_HOSTS": "zk1:2181,zk2:2181",
        "EPUM_ZOOKEEPER_PATH": "/other",
        "EPUM_PERSISTENCE_TYPE": "zookeeper",
        "EPUM_SERVICE_NAME": "epum2",
        "EPUM_DEFAULT_USER": "ops",
        "EPUM_WORKER_NAME": "w1",
        "EPUM_LOG_LEVEL": "debug",
        "UNRELATED": "x",
    }
    assert set(env) - {"UNRELATED"} == set(ENV_OVERRIDES)
    cfg = load_config([path], env=env)
    assert cfg.amqp.url == "amqp://u:p@env:5672/vh"
    assert cfg.amqp.sysname == "sys1"
    assert cfg.zookeeper.hosts == "zk1:2181,zk2:2181"
    assert cfg.zookeeper.path == "/other"
    assert cfg.epum.persistence_type == "zookeeper"
    assert cfg.epum.service_name == "epum2"
    assert cfg.epum.default_user == "ops"
    assert cfg.worker_name == "w1"
    assert cfg.log_level == "DEBUG"


def test_an_empty_env_value_does_not_override():
    cfg = config_from_dict({"server": {"amqp": {"sysname": "s"}}}, env={"EPUM_SYSNAME": ""})
    assert cfg.amqp.sysname == "s"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"server": {"amqp": {"port": "abc"}}}, "server.amqp.port"),
        ({"server": {"amqp": {"port": 70000}}}, "server.amqp.port"),
        ({"server": {"amqp": {"prefetch": 0}}}, "server.amqp.prefetch"),
        ({"server": {"amqp": {"heartbeat": True}}}, "server.amqp.heartbeat"),
        ({"server": {"amqp": "localhost"}}, "server.amqp"),
        ({"server": {"zookeeper": {"path": "epum"}}}, "server.zookeeper.path"),
        ({"epumanagement": {"persistence_type": "redis"}}, "epumanagement.persistence_type"),
        ({"epumanagement": {"decider_loop_interval": 0}}, "epumanagement.decider_loop_interval"),
        ({"epumanagement": {"provisioner_vars": [1]}}, "epumanagement.provisioner_vars"),
        ({"epumanagement": {"allowed_engine_prefixes": "x"}}, "allowed_engine_prefixes"),
        ({"epumanagement": {"allowed_engine_prefixes": [1]}}, "allowed_engine_prefixes"),
        ({"epumanagement": {"initial_definitions": {"d": 1}}}, "initial_definitions.d"),
        ({"epumanagement": {"initial_domains": {"x": {"config": {}}}}}, "initial_domains.x"),
        ({"statsd": {"port": "p"}}, "statsd.port"),
        ({"logging": "verbose"}, "logging"),
        ({"log_level": "LOUD"}, "log_level"),
        ({"worker_name": 5}, "worker_name"),
    ],
)
def test_a_bad_value_is_an_error_naming_its_key(data, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(data, env={})


def test_ints_are_accepted_where_floats_are_expected():
    cfg = config_from_dict({"epumanagement": {"decider_loop_interval": 2}}, env={})
    assert cfg.epum.decider_loop_interval == 2.0
    assert isinstance(cfg.epum.decider_loop_interval, float)


def test_unknown_keys_are_reported_with_the_nearest_known_one_not_fatal():
    cfg = config_from_dict(
        {
            "server": {"amqp": {"hots": "x"}, "other": {}},
            "epumanagement": {"typo": 1},
            "statsdd": {},
        },
        env={},
    )
    assert set(cfg.warnings) == {
        "unknown key server.amqp.hots ignored; did you mean host?",
        "unknown key server.other ignored",
        "unknown key epumanagement.typo ignored",
        "unknown key statsdd ignored; did you mean statsd?",
    }
    assert cfg == config_from_dict({}, env={})  # nothing of them was kept


def test_a_typo_in_a_config_file_warns_naming_the_key_it_meant(tmp_path):
    path = write(tmp_path, "typo.yaml", "epumanagement:\n  decider_loop_intreval: 1\n")
    cfg = load_config([path], env={})
    assert cfg.epum.decider_loop_interval == 5.0
    (warning,) = cfg.warnings
    assert "epumanagement.decider_loop_intreval" in warning
    assert "did you mean decider_loop_interval?" in warning


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config([tmp_path / "missing.yaml"], env={})
    bad = write(tmp_path, "bad.yaml", "server: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML"):
        load_config([bad], env={})
    listy = write(tmp_path, "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config([listy], env={})
    empty = write(tmp_path, "empty.yaml", "")
    assert load_config([empty], env={}).epum.service_name == "epu_management_service"


def test_yaml_is_loaded_safely(tmp_path):
    evil = write(tmp_path, "evil.yaml", "x: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config([evil], env={})


def test_the_same_values_from_yaml_and_from_initial_conf_give_the_same_tree(tmp_path):
    path = write(
        tmp_path,
        "c.yaml",
        """
server:
  zookeeper: {hosts: "zk1:2181", path: /sys1, username: u, password: p, timeout: 4}
epumanagement:
  service_name: epum1
  default_user: ops
  persistence_type: zookeeper
  needy_default_iaas_site: site1
  needy_default_iaas_allocation: small
  provisioner_vars: {k: v}
  decider_loop_interval: 2
  doctor_loop_interval: 3
  reaper_loop_interval: 4
  record_reaping_max_age: 60
  allowed_engine_prefixes: [mine.engines]
worker_name: w1
""",
    )
    from_yaml = load_config([path], env={})
    from_conf = settings_from_initial_conf(
        {
            "service_name": "epum1",
            "default_user": "ops",
            "persistence_type": "zookeeper",
            "persistence_url": "zk1:2181",
            "persistence_path": "/sys1",
            "persistence_user": "u",
            "persistence_pw": "p",
            "persistence_timeout": 4,
            "needy_default_iaas_site": "site1",
            "needy_default_iaas_allocation": "small",
            "provisioner_vars": {"k": "v"},
            "decider_loop_interval": 2,
            "doctor_loop_interval": 3,
            "reaper_loop_interval": 4,
            "record_reaping_max_age": 60,
            "allowed_engine_prefixes": ["mine.engines"],
            "worker_name": "w1",
        }
    )
    assert from_yaml == from_conf
    assert from_yaml.warnings == from_conf.warnings == ()
    assert from_yaml.zookeeper == ZooKeeperSettings("zk1:2181", "/sys1", 4.0, "u", "p")


def test_broker_url_from_parts_and_masked_for_logs():
    cfg = config_from_dict(
        {"server": {"amqp": {"host": "h", "port": 5671, "username": "u@x", "password": "p/w"}}},
        env={},
    )
    url = broker_url(cfg.amqp)
    assert url == "amqp://u%40x:p%2Fw@h:5671/%2F"
    assert "p%2Fw" not in mask_url(url) and "****" in mask_url(url)
    assert mask_url("amqp://guest:guest@127.0.0.1:5672//") == "amqp://guest:****@127.0.0.1:5672//"
    assert mask_url("amqp://127.0.0.1//") == "amqp://127.0.0.1//"
    given = config_from_dict({}, env={"EPUM_AMQP_URL": "amqp://a:b@c//"})
    assert broker_url(given.amqp) == "amqp://a:b@c//"


@pytest.mark.parametrize("name", ["epum.yaml", "epum-zookeeper.yaml", "logging.yaml"])
def test_the_example_configs_load(name):
    cfg = load_config([REPO / "config" / name], env={})
    assert cfg.warnings == ()
    assert cfg.logging is None or cfg.logging["version"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "amqp://u:s3cret@h1:5672//;amqp://u:s3cret@h2:5672//",  # kombu failover hosts
        "amqp://u:s3#cret@h//",  # characters a password should have escaped
        "amqp://u:s3/cret@h//",
        "amqp://u:s3?cret@h//",
        "amqp://u:s3@cret@h//",
    ],
)
def test_no_part_of_a_password_survives_masking(url):
    masked = mask_url(url)
    assert "s3" not in masked and "cret" not in masked
    assert "u:****@" in masked


@pytest.mark.parametrize("section", ["amqp", "zookeeper"])
def test_a_password_of_the_wrong_type_is_not_echoed_in_the_error(section):
    with pytest.raises(ConfigError, match=rf"server\.{section}\.password") as info:
        config_from_dict({"server": {section: {"password": 918273645}}}, env={})
    assert "918273645" not in str(info.value)
