"""StoredChecks: a decider pass checks only the configs and records that changed."""

from __future__ import annotations

import pytest

from epum import domain_config
from epum.domain_config import StoredChecks, stored_problem
from epum.instances import Instance
from epum.settings import EPUMSettings, LimitSettings

CONFIG = {"general": {"engine_class": "simplest"}, "engine_conf": {"preserve_n": 1}, "health": {}}


def record(instance_id: str, **fields) -> Instance:
    return Instance(instance_id, "launch", "site1", None, "600-RUNNING", 1.0, **fields)


@pytest.fixture
def checks() -> StoredChecks:
    return StoredChecks(EPUMSettings(), LimitSettings())


@pytest.fixture
def checked(monkeypatch) -> list[str]:
    """The instance ids whose records were checked, in order."""
    seen: list[str] = []
    real = domain_config.record_problem

    def counting(rec, limits):
        seen.append(rec["instance_id"])
        return real(rec, limits)

    monkeypatch.setattr(domain_config, "record_problem", counting)
    return seen


def test_a_steady_pass_checks_no_record_and_a_changed_one_is_checked_again(checks, checked):
    a, b = record("a"), record("b")
    assert checks.problem("dom", CONFIG, [a, b]) is None
    assert checks.problem("dom", dict(CONFIG), [a, b]) is None
    assert checked == ["a", "b"]
    changed = b.replace(iaas_id="i-1")
    assert checks.problem("dom", CONFIG, [a, changed]) is None
    assert checked == ["a", "b", "b"]


def test_it_names_the_problem_stored_problem_names(checks):
    bad = record("a", extravars="zzz")  # written around the checks
    expected = stored_problem(CONFIG, [bad.to_dict()], EPUMSettings(), LimitSettings())
    assert expected is not None
    assert checks.problem("dom", CONFIG, [bad]) == expected
    assert checks.problem("dom", CONFIG, [bad]) == expected  # remembered, not forgotten


def test_a_changed_config_is_checked_again(checks):
    assert checks.problem("dom", CONFIG, [record("a")]) is None
    broken = {**CONFIG, "health": {"missing_timeout": "soon"}}
    problem = checks.problem("dom", broken, [record("a")])
    assert problem is not None and problem.startswith("config:")


def test_forget_drops_the_domains_that_are_gone(checks, checked):
    a = record("a")
    checks.problem("gone", CONFIG, [a])
    checks.forget(set())
    checks.problem("gone", CONFIG, [a])
    assert checked == ["a", "a"]


def test_a_bounded_memo_drops_the_domain_checked_longest_ago(checked):
    checks = StoredChecks(EPUMSettings(), LimitSettings(), max_domains=2)
    a, b, c = record("a"), record("b"), record("c")
    checks.problem("one", CONFIG, [a])
    checks.problem("two", CONFIG, [b])
    checks.problem("one", CONFIG, [a])  # "two" is now the oldest
    checks.problem("three", CONFIG, [c])
    checks.problem("one", CONFIG, [a])
    checks.problem("two", CONFIG, [b])
    assert checked == ["a", "b", "c", "b"]
