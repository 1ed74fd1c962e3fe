"""The one log context: what it carries, where it is set, and that it reaches records.

``caplog`` carries ``LogContextFilter`` on its handler (tests/conftest.py), as
the worker's logging config does.
"""

from __future__ import annotations

import logging
import threading

import pytest

from epum.logcontext import LogContext, current, log_context, request_context
from epum.management import EPUManagement
from epum.messaging.dispatch import Dispatcher
from epum.messaging.epum_ops import EPUMOperations
from tests.fakes import FakeDTRS, FakeNotifier, FakeProvisioner


def test_fields_nest_and_are_restored():
    assert current() == LogContext()
    with log_context(caller="alice") as outer:
        assert outer.caller == "alice"
        with log_context(domain="dom", caller=None) as inner:  # None keeps the caller
            assert (inner.caller, inner.domain) == ("alice", "dom")
        assert current() is outer
    assert current() == LogContext()


def test_a_request_starts_a_fresh_context_with_an_id():
    with log_context(caller="left-over", domain="dom"):
        with request_context("list_domains", sender="cli") as ctx:
            assert (ctx.op, ctx.sender, ctx.caller, ctx.domain) == (
                "list_domains",
                "cli",
                None,
                None,
            )
            assert ctx.request_id
        with request_context("x", request_id="r7") as given:
            assert given.request_id == "r7"
    with request_context() as a, request_context() as b:
        assert a.request_id != b.request_id


def test_an_unknown_field_is_refused_by_name():
    with pytest.raises(TypeError, match="unknown log context field"), log_context(domian="d"):
        pass


def test_threads_do_not_see_each_others_context():
    seen = []
    with log_context(caller="main"):
        thread = threading.Thread(target=lambda: seen.append(current().caller))
        thread.start()
        thread.join()
    assert seen == [None]


def test_a_record_keeps_fields_it_was_given(caplog):
    logger = logging.getLogger("epum.test.logcontext")
    with caplog.at_level(logging.INFO, logger=logger.name), log_context(domain="ctx"):
        logger.info("explicit", extra={"domain": "given"})
        logger.info("from the context")
    assert [r.domain for r in caplog.records] == ["given", "ctx"]
    assert [r.request_id for r in caplog.records] == ["-", "-"]


@pytest.fixture
def facade():
    epum = EPUManagement(
        {"_external_decide_invocations": True}, FakeNotifier(), FakeProvisioner(), None, FakeDTRS()
    )
    epum.initialize()
    epum.msg_add_domain_definition("simple", {"general": {"engine_class": "simplest"}})
    yield epum
    epum.shutdown()


def test_a_request_through_the_table_logs_its_id_op_caller_and_domain(facade, caplog):
    dispatcher = Dispatcher(EPUMOperations(facade, default_user="owner").table())
    caplog.set_level(logging.INFO, logger="epum")
    with request_context("add_domain", sender="cli", request_id="r1"):
        dispatcher.dispatch(
            "add_domain",
            {
                "domain_id": "pool",
                "definition_id": "simple",
                "config": {"engine_conf": {"preserve_n": 0}},
            },
        )
    (added,) = [r for r in caplog.records if "domain added" in r.getMessage()]
    assert (added.request_id, added.op, added.caller, added.domain, added.sender) == (
        "r1",
        "add_domain",
        "owner",
        "pool",
        "cli",
    )
    assert added.getMessage() == "domain added from simple"  # no prefix in the text


def test_reports_and_roles_log_the_domain_they_concern(facade, caplog):
    caplog.set_level(logging.INFO, logger="epum")
    facade.msg_add_domain("alice", "pool", "simple", {"engine_conf": {"preserve_n": 1}})
    facade._run_decisions()
    (instance_id,) = facade.provisioner_client.provisioned_ids()
    facade.msg_instance_info("provisioner", {"node_id": instance_id, "state": "600-RUNNING"})
    facade.msg_remove_domain("alice", "pool")
    facade._run_decisions()
    lines = [r for r in caplog.records if r.name.startswith("epum.")]
    assert {r.name for r in lines} >= {
        "epum.reactor",
        "epum.decider",
        "epum.control",
        "epum.engines.simplest",
    }
    assert all((r.caller, r.domain) == ("alice", "pool") for r in lines), [
        (r.name, r.getMessage(), r.caller, r.domain) for r in lines
    ]
