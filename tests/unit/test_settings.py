"""The settings tree: one declaration per setting, the initial_conf table, unknown keys, errors."""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from epum import EPUManagement
from epum.errors import BadRequestError, ConfigError, EpumError, RemoteError
from epum.messaging import envelope
from epum.service import configure_logging
from epum.settings import (
    INITIAL_CONF_KEYS,
    AmqpSettings,
    EPUMSettings,
    SensorSettings,
    Settings,
    StatsdSettings,
    ZooKeeperSettings,
    build,
    settings_from_dict,
    settings_from_initial_conf,
    to_initial_conf,
)
from tests.fakes import FakeDTRS, FakeNotifier, FakeProvisioner

REPO = Path(__file__).resolve().parents[2]
SECTIONS = (Settings, AmqpSettings, ZooKeeperSettings, EPUMSettings, StatsdSettings, SensorSettings)


def facade(conf, **kwargs) -> EPUManagement:
    return EPUManagement(conf, FakeNotifier(), FakeProvisioner(), None, FakeDTRS(), **kwargs)


@pytest.mark.parametrize("cls", SECTIONS)
def test_every_setting_gives_the_reason_for_its_default(cls):
    for f in dataclasses.fields(cls):
        if f.name != "warnings":
            assert f.metadata.get("why"), f"{cls.__name__}.{f.name} has no reason"


def test_a_typo_in_initial_conf_warns_once_naming_the_key_it_meant(caplog):
    with caplog.at_level(logging.WARNING, logger="epum.management"):
        epum = facade({"decider_loop_intreval": 1})
    assert epum.settings.decider_loop_interval == 5.0
    (record,) = [r for r in caplog.records if "decider_loop_intreval" in r.getMessage()]
    assert "did you mean decider_loop_interval?" in record.getMessage()


def test_a_key_with_no_near_match_is_still_reported():
    (warning,) = settings_from_initial_conf({"colour": "blue"}).warnings
    assert warning == "unknown key initial_conf.colour ignored"


def test_every_initial_conf_key_has_a_place_in_the_tree():
    flat = to_initial_conf(Settings())  # reads every key's place: a wrong path raises
    assert set(flat) == set(INITIAL_CONF_KEYS)
    given = {key: value for key, value in flat.items() if value is not None}
    assert settings_from_initial_conf(given).warnings == ()


def test_initial_conf_round_trips_through_the_tree():
    tree = settings_from_initial_conf(
        {
            "persistence_type": "zookeeper",
            "persistence_url": "zk:2181",
            "persistence_timeout": 3,
            "_external_decide_invocations": True,
            "allowed_engine_prefixes": ["mine"],
            "worker_name": "w",
        }
    )
    assert (tree.zookeeper.hosts, tree.zookeeper.timeout) == ("zk:2181", 3.0)
    assert tree.epum.external_decide is True
    assert tree.epum.allowed_engine_prefixes == ("mine",)
    assert settings_from_initial_conf(to_initial_conf(tree)) == tree


def test_none_in_initial_conf_means_the_default():
    tree = settings_from_initial_conf({"decider_loop_interval": None, "persistence_url": None})
    assert tree == Settings(worker_name=tree.worker_name)
    assert tree.epum.decider_loop_interval == 5.0


@pytest.mark.parametrize(
    ("conf", "fragment"),
    [
        ({"decider_loop_interval": 0}, "decider_loop_interval must be > 0"),
        ({"record_reaping_max_age": float("nan")}, "record_reaping_max_age must be > 0"),
        ({"doctor_loop_interval": "10"}, "doctor_loop_interval: expected float"),
        ({"persistence_type": "sqlite"}, "persistence_type must be memory or zookeeper"),
        ({"persistence_url": ""}, "persistence_url must not be empty"),
        ({"persistence_path": "epum"}, "persistence_path must start with /"),
        ({"persistence_timeout": -1}, "persistence_timeout must be > 0"),
        ({"service_name": 7}, "service_name: expected str"),
        ({"_external_decide_invocations": "yes"}, "_external_decide_invocations: expected bool"),
        ({"provisioner_vars": ["x"]}, "provisioner_vars: expected dict"),
        ({"allowed_engine_prefixes": "x"}, "allowed_engine_prefixes: expected a list"),
        ({"allowed_engine_prefixes": [""]}, "allowed_engine_prefixes must not hold an empty"),
    ],
)
def test_a_bad_initial_conf_value_is_a_config_error_naming_its_key(conf, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        facade(conf)
    assert not isinstance(info.value, BadRequestError)
    assert isinstance(info.value, EpumError) and isinstance(info.value, ValueError)


def test_a_zookeeper_username_needs_a_password():
    with pytest.raises(ConfigError, match="persistence_user needs persistence_pw"):
        settings_from_initial_conf({"persistence_user": "u"})
    with pytest.raises(ConfigError, match=r"server\.zookeeper\.username needs a password"):
        settings_from_dict({"server": {"zookeeper": {"username": "u"}}})
    assert ZooKeeperSettings(username="u", password="p").username == "u"


def test_initial_conf_must_be_a_mapping():
    with pytest.raises(ConfigError, match="initial_conf must be a mapping"):
        settings_from_initial_conf(["service_name"])  # type: ignore[arg-type]


def test_a_secret_of_the_wrong_type_is_not_echoed():
    with pytest.raises(ConfigError, match="persistence_pw") as info:
        settings_from_initial_conf({"persistence_pw": 918273645})
    assert "918273645" not in str(info.value)


def test_a_section_built_in_code_is_checked_too():
    with pytest.raises(ConfigError, match=r"ZooKeeperSettings\.path must start with /"):
        ZooKeeperSettings(path="epum")
    with pytest.raises(ConfigError, match=r"AmqpSettings\.port must be 1\.\.65535"):
        AmqpSettings(port=0)
    with pytest.raises(ConfigError, match="persistence_type"):
        EPUMSettings(persistence_type="redis")


def test_the_facade_takes_a_built_tree_and_does_not_log_its_warnings_again(caplog):
    tree = settings_from_dict(
        {"epumanagement": {"service_name": "epum9", "decider_loop_intreval": 1}}
    )
    assert tree.warnings
    with caplog.at_level(logging.WARNING):
        epum = facade(tree)
    assert epum.settings is tree.epum
    assert epum.settings.service_name == "epum9"
    assert not [r for r in caplog.records if "intreval" in r.getMessage()]


def test_the_worker_logs_the_config_warnings_once(caplog):
    tree = settings_from_dict(
        {
            "epumanagement": {"decider_loop_intreval": 1},
            "logging": {"version": 1, "incremental": True},
        }
    )
    with caplog.at_level(logging.WARNING, logger="epum.service"):
        configure_logging(tree)
    messages = [r.getMessage() for r in caplog.records if "intreval" in r.getMessage()]
    assert len(messages) == 1
    assert "did you mean decider_loop_interval?" in messages[0]


def test_an_unknown_statsd_cfg_key_is_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="epum.management"):
        epum = facade({}, statsd_cfg={"host": "127.0.0.1", "prot": 1})
    epum.statsd.close()
    assert any("statsd_cfg.prot" in r.getMessage() for r in caplog.records)


def test_a_listed_original_key_is_reported_as_ignored_not_as_unknown(monkeypatch):
    # changed on purpose (issue 8): such keys were skipped silently; now they are
    # reported once, as ignored, with the reason
    listed = {"epumanagement.old_knob": "gone", "initial_conf.old_knob": "gone"}
    monkeypatch.setattr(build, "IGNORED_ORIGINAL_KEYS", listed)
    (warning,) = settings_from_dict({"epumanagement": {"old_knob": 1}}).warnings
    assert "epumanagement.old_knob" in warning and "ignored: gone" in warning
    assert "unknown" not in warning
    (warning,) = settings_from_initial_conf({"old_knob": 1}).warnings
    assert "initial_conf.old_knob" in warning and "unknown" not in warning
    assert (
        "unknown key initial_conf.other_knob"
        in settings_from_initial_conf({"other_knob": 1}).warnings[0]
    )


def test_a_config_error_travels_under_its_own_name_not_as_a_bad_request():
    try:
        raise ConfigError("epumanagement.decider_loop_interval must be > 0")
    except ConfigError as exc:
        reply = json.loads(envelope.reply_error(exc))
    assert reply["error"]["exc_type"] == "ConfigError"
    assert "BadRequest" not in reply["error"]["exc_type"]
    with pytest.raises(RemoteError) as info:
        envelope.unwrap_reply(reply)
    assert info.value.exc_type == "ConfigError"
    assert "decider_loop_interval" in info.value.value


def test_messaging_does_not_import_the_yaml_loader():
    for path in sorted((REPO / "epum" / "messaging").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(("epum.config", "yaml")), f"{path.name} imports {name}"
    code = "import sys, epum.messaging; sys.exit('epum.config' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
