"""The compact attribute encoding (attrs_json, context_json) beside Struct, over a real
server: the same decisions either way, every malformed JSON refused by name, and the
cached serialized responses still unique per decision."""

from __future__ import annotations

import json

import grpc
import pytest

from policyd import wire
from policyd._proto.policyd.v1 import policyd_pb2 as pb
from policyd.client import DecisionClient

from .conftest import EXAMPLES, Unlimited, order, req, user
from .servers import thread_server

ORDERS = EXAMPLES / "orders"
REQUESTS = sorted((ORDERS / "requests").glob("*.json"))


@pytest.fixture(scope="module")
def served():
    with thread_server(ORDERS, rate_store=Unlimited(), max_message_bytes=64 * 1024,
                       reload=False) as (target, _), grpc.insecure_channel(target) as channel:
        yield target, channel.unary_unary(wire.CHECK, request_serializer=lambda b: b,
                                          response_deserializer=pb.CheckResponse.FromString)


def _decision(resp: pb.CheckResponse) -> tuple:
    return (resp.allowed, tuple(resp.reasons), tuple(resp.visible_fields), resp.policy_version,
            tuple(resp.warnings))


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_struct_and_json_attributes_decide_the_same(served, path):
    _, call = served
    request = json.loads(path.read_text())
    compact = wire.check_request(request)
    plain = wire.check_request(request, compact=False)
    assert compact.principal.attrs_json and not compact.principal.HasField("attrs")
    assert plain.principal.HasField("attrs") and not plain.principal.attrs_json
    assert compact.context_json and not compact.HasField("context")
    got = [call(m.SerializeToString()) for m in (compact, plain, compact, plain)]
    assert len({_decision(r) for r in got}) == 1
    assert len({r.decision_id for r in got}) == 4  # the cached bytes keep ids unique


def test_the_python_client_sends_the_compact_encoding(served):
    target, _ = served
    sent = []
    with DecisionClient(target, timeout=5) as client:
        for name in ("_check", "_batch", "_plan"):
            original = getattr(client, name)

            def spy(msg, original=original, **kw):
                sent.append(msg)
                return original(msg, **kw)

            setattr(client, name, spy)
        assert client.check(req(user(), "read", order())).allowed
        batch = client.check_batch(user(), [{"resource": order(), "actions": ["read"]}],
                                   {"ip": "10.1.2.3"})
        assert batch[0].allowed
        plan = client.plan({"principal": user(), "action": "list",
                            "resource": {"type": "Order"}, "context": {"ip": "10.1.2.3"}})
        assert plan.kind == "conditional"
    check, batch_msg, plan_msg = sent
    assert check.principal.attrs_json and check.resource.attrs_json and check.context_json
    assert batch_msg.principal.attrs_json and batch_msg.context_json
    assert batch_msg.items[0].resource.attrs_json
    assert plan_msg.principal.attrs_json and plan_msg.context_json
    assert not any(m.principal.HasField("attrs") for m in sent)


def _raw(principal=None, resource=None, **fields) -> bytes:
    msg = pb.CheckRequest(action="read", **fields)
    msg.principal.CopyFrom(principal or wire.entity(user()))
    msg.resource.CopyFrom(resource or wire.entity(order()))
    if "context" not in fields and "context_json" not in fields:
        msg.context_json = b'{"ip":"10.1.2.3"}'
    return msg.SerializeToString()


@pytest.mark.parametrize("payload, words", [
    (_raw(principal=pb.Entity(type="User", id="alice", attrs_json=b"{not json")),
     "principal.attrs_json: not JSON"),
    (_raw(principal=pb.Entity(type="User", id="alice", attrs_json=b'["viewer"]')),
     "principal.attrs_json: must be a JSON object, found list"),
    (_raw(resource=pb.Entity(type="Order", id="o1", attrs_json=b"\xff\xfe")),
     "resource.attrs_json: not JSON"),
    (_raw(resource=pb.Entity(type="Order", id="o1", attrs_json=b"[" * 20_000 + b"]" * 20_000)),
     "resource.attrs_json: not JSON"),  # too deep for the decoder
    (_raw(resource=pb.Entity(type="Order", id="o1", attrs_json=b"[" * 90_000 + b"]" * 90_000)),
     None),  # over the server's message bound
    (_raw(principal=pb.Entity(type="User", id="alice", attrs_json=b'{"tenant":"t1"}',
                              attrs=wire.struct({"tenant": "t1"}))),
     "principal: send attrs or attrs_json, not both"),
    (_raw(context_json=b'{"ip":"10.1.2.3"}', context=wire.struct({"ip": "10.1.2.3"})),
     "send context or context_json, not both"),
    (_raw(context_json=b'{"ip":"nowhere"}'), "context.ip"),
    (_raw(resource=pb.Entity(type="Order", id="o1", attrs_json=json.dumps(
        {**order()["attrs"], "total": float("nan")}).encode())), "total"),
])
def test_malformed_compact_attributes_are_invalid_argument(served, payload, words):
    _, call = served
    with pytest.raises(grpc.RpcError) as caught:
        call(payload, timeout=10)
    code = caught.value.code()
    assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)
    if words is not None:
        assert code == grpc.StatusCode.INVALID_ARGUMENT and words in caught.value.details()
    assert call(_raw(), timeout=5).allowed  # and it keeps serving


def test_batch_and_plan_take_context_json(served):
    target, _ = served
    with grpc.insecure_channel(target) as channel:
        batch = channel.unary_unary(wire.CHECK_BATCH,
                                    request_serializer=pb.CheckBatchRequest.SerializeToString,
                                    response_deserializer=pb.CheckBatchResponse.FromString)
        plan = channel.unary_unary(wire.PLAN_RESOURCES,
                                   request_serializer=pb.PlanRequest.SerializeToString,
                                   response_deserializer=pb.PlanResponse.FromString)
        msg = pb.CheckBatchRequest(principal=wire.entity(user()),
                                   context_json=b'{"ip":"10.1.2.3"}')
        msg.items.add(resource=wire.entity(order()), actions=["read", "refund"])
        got = batch(msg, timeout=5)
        assert [r.allowed for r in got.results] == [True, False]
        assert "order_fraud.offsite_refund" not in got.results[1].reasons  # the office ip
        found = plan(pb.PlanRequest(principal=wire.entity(user()), action="list",
                                    resource=pb.Entity(type="Order"),
                                    context_json=b'{"ip":"10.1.2.3"}'), timeout=5)
        assert found.kind == pb.PlanResponse.CONDITIONAL


def test_cached_response_bytes_are_the_full_message():
    from policyd.engine.models import FrozenList, make_decision

    d = make_decision(False, FrozenList(["rate_limited", "orders#12"]), FrozenList(), 12.5,
                      "sha256:x", FrozenList(["unknown_role:ghost"]))
    for decision_id in ("a-1", "b-2", "x" * 200):
        got = pb.CheckResponse.FromString(wire.response_bytes(d, decision_id))
        assert got == wire.response(d, decision_id)
    assert d == make_decision(False, FrozenList(["rate_limited", "orders#12"]), FrozenList(),
                              12.5, "sha256:x", FrozenList(["unknown_role:ghost"]))
