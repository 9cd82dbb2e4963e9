"""PlanResources over a real gRPC channel: the same plans as in process, usable with
to_sql and matches on the client side, bad requests refused by name."""

from __future__ import annotations

import sqlite3

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd import Engine, RequestError
from policyd._proto.policyd.v1 import policyd_pb2 as pb
from policyd.client import DecisionClient
from policyd.plans import to_sql

from .conftest import EXAMPLES, Unlimited, user
from .servers import thread_server
from .strategies import attrs

OFFICE = {"ip": "10.1.2.3", "time": "2026-11-22T10:00:00Z"}


@pytest.fixture(scope="module", params=["orders", "projects", "documents"])
def served(request):
    path = EXAMPLES / request.param
    with thread_server(path, rate_store=Unlimited(), reload=False) as (target, _):
        client = DecisionClient(target, timeout=5)
        yield client, Engine.from_path(path, rate_store=Unlimited())
        client.close()


def test_served_plans_equal_in_process_plans(served):
    client, engine = served
    schema = engine.policy_set.schema
    roles = sorted(schema.roles)
    ids = sorted({e for t in engine.policy_set.entities.principals.values() for e in t.rows})

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        ptype = data.draw(st.sampled_from(sorted(schema.principals)))
        rtype = data.draw(st.sampled_from(sorted(schema.resources)))
        action = data.draw(st.sampled_from(list(schema.resources[rtype].actions) + ["nope"]))
        principal = {"type": ptype, "id": data.draw(st.sampled_from(ids or ["alice", "bob"]))}
        pattrs = data.draw(attrs(schema.principals[ptype], roles, schema.records))
        if pattrs:
            principal["attrs"] = pattrs
        request = {"principal": principal, "action": action, "resource": {"type": rtype}}
        if schema.context is not None:
            request["context"] = data.draw(attrs(schema.context, roles, schema.records))
        local, remote = engine.plan(request), client.plan(request)
        assert remote.to_dict() == local.to_dict()
        assert remote.residual == local.residual  # the nodes, values in runtime form

    run()


def test_a_served_plan_filters_a_table():
    with thread_server(EXAMPLES / "orders", reload=False) as (target, _), \
            DecisionClient(target, timeout=5) as client:
        plan, decision_id = client.plan_with_id(
            {"principal": user(), "action": "update", "resource": {"type": "Order"},
             "context": OFFICE}, request_id="list-orders")
        assert decision_id and plan.kind == "conditional"
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE orders (id TEXT, owner TEXT, tenant TEXT)")
        db.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                       [("o1", "alice", "t1"), ("o2", "bob", "t1"), ("o3", "alice", "t2")])
        where, params = to_sql(plan, {"owner": "owner", "tenant": "tenant"})
        rows = db.execute(f"SELECT id FROM orders WHERE {where}", params).fetchall()
        assert rows == [("o1",)]
        with pytest.raises(RequestError, match="resource.attrs.bogus is not declared"):
            client.plan({"principal": user(), "action": "read", "context": OFFICE,
                         "resource": {"type": "Order", "attrs": {"bogus": 1}}})


def test_undecodable_plan_requests_are_invalid_argument():
    with thread_server(EXAMPLES / "orders", reload=False) as (target, _):
        channel = grpc.insecure_channel(target)
        call = channel.unary_unary("/policyd.v1.DecisionService/PlanResources",
                                   request_serializer=lambda b: b,
                                   response_deserializer=pb.PlanResponse.FromString)
        with pytest.raises(grpc.RpcError) as err:
            call(b"\xff\xff\xff", timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a PlanRequest" in err.value.details()
        channel.close()
