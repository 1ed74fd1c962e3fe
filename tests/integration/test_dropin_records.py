"""The provisioner's undeclared record fields survive every store backend (issue 8)."""

from __future__ import annotations

import pytest

from epum.states import InstanceState
from tests.store_backends import BACKENDS, make_store
from tests.unit.scenario import Scenario


@pytest.fixture(params=BACKENDS)
def sc(request):
    scenario = Scenario(store=make_store(request.param, request))
    yield scenario
    scenario.epum.shutdown()


def test_extra_fields_round_trip_through_the_store(sc):
    sc.add_domain("alice", "dom", 1)
    sc.decide()
    (node,) = sc.provisioner.provisioned_ids()
    changes = [[InstanceState.PENDING, 1.5]]
    sc.cloud.report(
        node, InstanceState.PENDING, iaas_image="ami-1", ctx={"name": "c"}, state_changes=changes
    )
    sc.cloud.report(node, InstanceState.RUNNING, public_ip="10.0.0.1")
    (record,) = sc.instances("alice", "dom")
    assert record["iaas_image"] == "ami-1" and record["ctx"] == {"name": "c"}
    assert record["state_changes"] == changes
    domain = sc.epum.store.get_domain_for_instance_id(node)
    stored = domain.get_instance(node)
    assert stored.extra_fields == {
        "iaas_image": "ami-1",
        "ctx": {"name": "c"},
        "state_changes": changes,
    }
    assert stored.public_ip == "10.0.0.1"
