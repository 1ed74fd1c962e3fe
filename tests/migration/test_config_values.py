"""Domain config values an original deployment wrote are read with the original's meaning."""

from __future__ import annotations

import logging

import pytest

from epum.errors import BadRequestError
from epum.health import HealthConfig
from tests.migration.drive import DOMAIN, OWNER, Driven

SIMPLEST = {"general": {"engine_class": "epu.decisionengine.impls.simplest.SimplestEngine"}}


@pytest.fixture
def driven():
    made = []

    def make(*args, **kwargs):
        d = Driven(*args, **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_numeric_string_preserve_n(driven):
    d = driven(SIMPLEST, {"engine_conf": {"preserve_n": "2"}})
    assert d.decide() == 2


def test_string_bools_and_numbers_in_health(driven):
    d = driven(
        SIMPLEST,
        {
            "engine_conf": {"preserve_n": 0},
            "health": {"monitor_health": "false", "boot_timeout": "600", "zombie_seconds": 30},
        },
    )
    health = HealthConfig.from_section(
        d.epum.msg_describe_domain(OWNER, DOMAIN)["config"]["health"]
    )
    # bool("false") was True in the original: a plain bug, read as false here
    assert health.monitor_health is False
    assert health.boot_timeout == 600.0
    d2 = driven(SIMPLEST, {"engine_conf": {"preserve_n": 0}, "health": {"monitor_health": "True"}})
    config = d2.epum.msg_describe_domain(OWNER, DOMAIN)["config"]
    assert HealthConfig.from_section(config["health"]).monitor_health is True


def test_unknown_sections_and_health_keys_are_ignored_and_logged_once(driven, caplog):
    caplog.set_level(logging.WARNING, logger="epum.domain_config")
    config = {
        "engine_conf": {"preserve_n": 1},
        "health": {"monitor_health": False, "old_health_key": 5},
        "legacy_section": {"x": 1},
    }
    d = driven({**SIMPLEST, "legacy_section": {"y": 2}}, config)
    d.epum.msg_add_domain(OWNER, "dom2", "def", config)
    assert d.decide() == 1
    stored = d.epum.msg_describe_domain(OWNER, DOMAIN)["config"]
    assert "legacy_section" not in stored, "a domain stores the three sections only"
    assert stored["health"]["old_health_key"] == 5, "unknown health keys are kept"
    definition = d.epum.msg_describe_domain_definition("def")["definition"]
    assert definition["legacy_section"] == {"y": 2}, "a definition is kept as given"
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("'legacy_section'" in w for w in warnings) <= 1
    assert sum("'old_health_key'" in w for w in warnings) <= 1
    # and a reconfigure may carry them too
    d.epum.msg_reconfigure_domain(OWNER, DOMAIN, {"legacy_section": {}, "health": {"x": 1}})


def test_merge_is_one_level_deep_as_the_original(driven):
    """A key of a section replaces the definition's value whole, nested mappings included."""
    definition = {
        **SIMPLEST,
        "engine_conf": {
            "preserve_n": 1,
            "epuworker_type": "dt-from-definition",
            "provisioner_vars": {"from_definition": 1, "shared": "definition"},
        },
    }
    d = driven(
        definition,
        {"engine_conf": {"provisioner_vars": {"shared": "domain"}}},
        service_conf={"provisioner_vars": {"service_wide": True, "shared": "service"}},
    )
    engine_conf = d.epum.msg_describe_domain(OWNER, DOMAIN)["config"]["engine_conf"]
    assert engine_conf["epuworker_type"] == "dt-from-definition"
    assert engine_conf["provisioner_vars"] == {"shared": "domain"}, "replaced, not merged"
    d.decide()
    launch_vars = d.provisioned[0]["vars"]
    # the service-wide vars are updated (one level) by the domain's
    assert launch_vars["service_wide"] is True and launch_vars["shared"] == "domain"
    assert "from_definition" not in launch_vars


def test_definition_is_copied(driven):
    d = driven({**SIMPLEST, "engine_conf": {"preserve_n": 1}})
    d.epum.msg_update_domain_definition("def", {**SIMPLEST, "engine_conf": {"preserve_n": 5}})
    assert d.decide() == 1


def test_engine_outside_allowed_prefixes_is_refused_with_what_to_do(driven):
    d = driven(SIMPLEST, {"engine_conf": {"preserve_n": 0}})
    with pytest.raises(BadRequestError, match=r"general\.engine_class.*allowed_engine_prefixes"):
        d.epum.msg_add_domain_definition("custom", {"general": {"engine_class": "corp.Engine"}})
