"""The engine loader: registered names, aliases, allowed prefixes, refusals."""

from __future__ import annotations

import sys

import pytest

from epum.engines.loader import DEFAULT_ENGINE, REGISTRY, load_engine_class
from epum.engines.multisite import MultiSiteOverflowEngine
from epum.engines.needy import NeedyEngine
from epum.engines.sensor import SensorEngine
from epum.engines.simplest import SimplestEngine
from epum.errors import BadRequestError
from tests.unit import engine_fakes

EXPECTED = {
    "simplest": SimplestEngine,
    "needy": NeedyEngine,
    "sensor": SensorEngine,
    "multisite": MultiSiteOverflowEngine,
    "epum.engines.simplest.SimplestEngine": SimplestEngine,
    "epum.engines.needy.NeedyEngine": NeedyEngine,
    "epum.engines.sensor.SensorEngine": SensorEngine,
    "epum.engines.multisite.MultiSiteOverflowEngine": MultiSiteOverflowEngine,
    "epu.decisionengine.impls.simplest.SimplestEngine": SimplestEngine,
    "epu.decisionengine.impls.needy.NeedyEngine": NeedyEngine,
    "epu.decisionengine.impls.sensor.SensorEngine": SensorEngine,
    "epu.decisionengine.impls.phantom_multi_site_overflow.PhantomMultiSiteOverflowEngine": (
        MultiSiteOverflowEngine
    ),
}


@pytest.mark.parametrize(("name", "cls"), sorted(EXPECTED.items()))
def test_registered_names_and_aliases(name, cls):
    assert load_engine_class(name) is cls


def test_registry_holds_exactly_the_expected_names():
    assert REGISTRY == EXPECTED


@pytest.mark.parametrize("empty", [None, ""])
def test_empty_name_gives_default(empty):
    assert DEFAULT_ENGINE == "simplest"
    assert load_engine_class(empty) is SimplestEngine


def test_allowed_prefix_imports_engine():
    name = "tests.unit.engine_fakes.ExtraEngine"
    assert load_engine_class(name, ["tests.unit."]) is engine_fakes.ExtraEngine
    assert load_engine_class(name, ["tests.unit"]) is engine_fakes.ExtraEngine


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("tests.unit.engine_fakes.NotAnEngine", "not an Engine subclass"),
        ("tests.unit.engine_fakes.make_instance", "not an Engine subclass"),
        ("tests.unit.engine_fakes.AbstractEngine", "abstract"),
        ("tests.unit.engine_fakes.Missing", "has no Missing"),
        ("tests.unit.no_such_module.Engine", "cannot import"),
    ],
)
def test_allowed_prefix_still_checks_what_it_finds(name, message):
    with pytest.raises(BadRequestError, match=message) as info:
        load_engine_class(name, ["tests.unit"])
    assert name in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "os.system",
        "subprocess.Popen",
        "antigravity.Engine",
        "this.Engine",
        "tests.unit.engine_fakes.ExtraEngine",
        "needy2",
        "epu.decisionengine.impls.other.OtherEngine",
        "../../etc.passwd",
        "a..b",
    ],
)
def test_refused_names_import_nothing(name):
    assert "antigravity" not in sys.modules and "this" not in sys.modules
    before = set(sys.modules)
    with pytest.raises(BadRequestError) as info:
        load_engine_class(name, ["mycompany.engines"])
    assert set(sys.modules) == before
    assert repr(name) in str(info.value)


def test_prefix_matches_whole_segments_only():
    before = set(sys.modules)
    with pytest.raises(BadRequestError, match="not under an allowed prefix"):
        load_engine_class("tests.unit_evil.mod.Engine", ["tests.unit"])
    assert set(sys.modules) == before


def test_name_must_be_a_string():
    with pytest.raises(BadRequestError, match="engine_class must be a string"):
        load_engine_class(["simplest"])


def test_plain_class_with_engine_methods_is_wrapped():
    name = "tests.unit.engine_fakes.PlainEngine"
    cls = load_engine_class(name, ["tests.unit"])
    assert cls.wrapped is engine_fakes.PlainEngine
    assert load_engine_class(name, ["tests.unit"]) is cls, "wrapped once"
    cls.validate_config({"preserve_n": 2})
    with pytest.raises(BadRequestError, match="PlainEngine refused its engine_conf: preserve_n"):
        cls.validate_config({"preserve_n": -1})
    assert "plain class" in cls.get_config_doc()
    engine = cls()
    assert engine.de_state == "PENDING_DE"


def test_refusal_names_the_key_and_what_to_do():
    with pytest.raises(BadRequestError, match=r"general\.engine_class .*allowed_engine_prefixes"):
        load_engine_class("corp.engines.Mine")
