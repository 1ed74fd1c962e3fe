"""The original EPU services' config keys: what they mean to epum (issue 8)."""

from __future__ import annotations

import pytest

from epum.config import config_from_dict
from epum.errors import ConfigError
from epum.service import prepare_logging
from epum.settings import settings_from_initial_conf, to_initial_conf
from epum.settings.original import fold_original_keys


def test_a_zookeeper_section_selects_the_zookeeper_store_when_no_type_is_given():
    zk = {"hosts": "zk1:2181", "path": "/epu", "timeout": 5, "username": "u", "password": "p"}
    tree = config_from_dict({"server": {"zookeeper": zk}}, env={})
    assert tree.epum.persistence_type == "zookeeper"
    assert tree.zookeeper.hosts == "zk1:2181" and tree.zookeeper.path == "/epu"
    flat = to_initial_conf(tree)
    assert flat["persistence_type"] == "zookeeper" and flat["persistence_user"] == "u"


@pytest.mark.parametrize("enabled", [False, "false", "FALSE"])
def test_a_disabled_zookeeper_section_keeps_the_memory_store(enabled):
    data = {"server": {"zookeeper": {"hosts": "zk1:2181", "path": "/e", "enabled": enabled}}}
    tree = config_from_dict(data, env={})
    assert tree.epum.persistence_type == "memory"
    assert tree.warnings == ()  # enabled is understood, not an unknown key


@pytest.mark.parametrize("enabled", [True, "true", "True"])
def test_an_enabled_zookeeper_section_selects_zookeeper(enabled):
    data = {"server": {"zookeeper": {"hosts": "h:1", "path": "/e", "enabled": enabled}}}
    assert config_from_dict(data, env={}).epum.persistence_type == "zookeeper"


def test_persistence_type_given_wins_over_the_section_and_the_environment_over_both():
    data = {
        "server": {"zookeeper": {"hosts": "h:1"}},
        "epumanagement": {"persistence_type": "memory"},
    }
    assert config_from_dict(data, env={}).epum.persistence_type == "memory"
    data = {"server": {"zookeeper": {"hosts": "h:1"}}}
    env = {"EPUM_PERSISTENCE_TYPE": "memory"}
    assert config_from_dict(data, env=env).epum.persistence_type == "memory"
    assert config_from_dict({}, env={"EPUM_ZOOKEEPER_HOSTS": "h:1"}).epum.persistence_type == (
        "memory"
    )


def test_a_bad_enabled_value_names_the_key():
    with pytest.raises(ConfigError, match=r"server\.zookeeper\.enabled"):
        config_from_dict({"server": {"zookeeper": {"enabled": "perhaps"}}}, env={})


def test_dashi_sysname_sets_the_namespace_and_the_environment_still_wins():
    assert config_from_dict({"dashi": {"sysname": "sys1"}}, env={}).amqp.sysname == "sys1"
    env = {"EPUM_SYSNAME": "sys2"}
    assert config_from_dict({"dashi": {"sysname": "sys1"}}, env=env).amqp.sysname == "sys2"
    same = {"dashi": {"sysname": "s"}, "server": {"amqp": {"sysname": "s"}}}
    assert config_from_dict(same, env={}).amqp.sysname == "s"


def test_two_different_namespaces_are_refused_naming_both_keys():
    data = {"dashi": {"sysname": "a"}, "server": {"amqp": {"sysname": "b"}}}
    with pytest.raises(ConfigError, match=r"dashi\.sysname.*server\.amqp\.sysname"):
        config_from_dict(data, env={})


def test_dashi_serializer_json_is_accepted_and_any_other_refused_naming_the_key():
    assert config_from_dict({"dashi": {"serializer": "json"}}, env={}).warnings == ()
    with pytest.raises(ConfigError, match=r"dashi\.serializer.*JSON only"):
        config_from_dict({"dashi": {"serializer": "pickle"}}, env={})


def test_other_dashi_keys_are_reported_as_unknown():
    (warning,) = config_from_dict({"dashi": {"sysnam": "x"}}, env={}).warnings
    assert "dashi" in warning


def test_dashis_memory_transport_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"server\.memory"):
        config_from_dict({"server": {"memory": {"name": "x"}}}, env={})


def test_the_originals_unused_keys_are_reported_once_as_ignored():
    data = {"epumanagement": {"proc_name": "epum_0", "mock_provisioner": True}, "system": {}}
    warnings = config_from_dict(data, env={}).warnings
    assert len(warnings) == 3
    assert all("ignored" in w and "unknown" not in w for w in warnings)
    assert any("epumanagement.mock_provisioner" in w and "provisioner" in w for w in warnings)


def test_folding_is_idempotent():
    data = {
        "dashi": {"sysname": "s", "serializer": "json"},
        "server": {"zookeeper": {"hosts": "h:1", "enabled": "false"}},
    }
    once = fold_original_keys(data)
    assert fold_original_keys(once) == once
    assert once["epumanagement"]["persistence_type"] == "memory"
    assert "dashi" not in once and data["dashi"]["sysname"] == "s"  # the input is untouched


def test_prepare_logging_creates_log_directories_and_keeps_epum_loggers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    section = {
        "version": 1,
        "handlers": {"file": {"class": "logging.FileHandler", "filename": "logs/a/f.txt"}},
        "loggers": {"epu": {"level": "WARNING"}},
    }
    prepared = prepare_logging(section)
    assert (tmp_path / "logs" / "a").is_dir()
    assert prepared["disable_existing_loggers"] is False
    assert prepared["loggers"]["epum"] == {"level": "WARNING"}
    assert "epum" not in section["loggers"]  # a copy
    explicit = prepare_logging({**section, "loggers": {"epu": {}, "epum": {"level": "ERROR"}}})
    assert explicit["loggers"]["epum"] == {"level": "ERROR"}


def test_the_originals_epumanagement_section_is_a_valid_initial_conf():
    # the original handed CFG.epumanagement to the facade as its initial_conf
    section = {
        "service_name": "epu_management_service",
        "provisioner_service_name": "provisioner",
        "initial_definitions": {},
        "initial_domains": {},
        "needy_default_iaas_site": "site-1",
        "needy_default_iaas_allocation": "t1.micro",
        "provisioner_vars": {},
        "proc_name": "epum_0",
    }
    tree = settings_from_initial_conf(section)
    assert tree.epum.needy_default_iaas_site == "site-1"
    (warning,) = tree.warnings
    assert "initial_conf.proc_name" in warning and "ignored" in warning
