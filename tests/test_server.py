"""The gRPC service over real channels: parity with the engine, health, reflection, every
kind of bad input, and the client library."""

from __future__ import annotations

import copy
import json
import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, given, settings

from policyd import Engine, RequestError
from policyd._proto.policyd.v1 import policyd_pb2 as pb
from policyd.client import DecisionClient, PolicydUnavailable

from .conftest import EXAMPLES, Unlimited, order, req, user
from .servers import free_port, health_status, thread_server
from .strategies import requests

ORDERS = EXAMPLES / "orders"


@pytest.fixture(scope="module")
def served():
    with thread_server(ORDERS, rate_store=Unlimited(), max_message_bytes=64 * 1024,
                       reload=False) as (target, built):
        client = DecisionClient(target, timeout=5)
        yield target, built, client
        client.close()


@pytest.fixture(scope="module")
def engine():
    return Engine.from_path(ORDERS, rate_store=Unlimited())


def _same(a, b) -> bool:
    return (a.allowed, list(a.reasons), list(a.visible_fields), a.policy_version,
            list(a.warnings)) == (b.allowed, list(b.reasons), list(b.visible_fields),
                                  b.policy_version, list(b.warnings))


def test_check_parity_with_the_engine(served, engine):
    _, _, client = served

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(requests(engine.policy_set.schema))
    def run(request):
        local = engine.check(request)
        assert _same(client.check(request), local)

    run()


def test_check_batch_parity_and_order(served, engine):
    _, _, client = served
    alice, items = user(), []
    for i, (tenant, owner) in enumerate([("t1", "alice"), ("t2", "alice"), ("t1", "bob")]):
        items.append({"resource": order(f"o{i}", tenant=tenant, owner=owner),
                      "actions": ["read", "update", "delete", "refund", "export"],
                      "write_fields": ["status"] if i == 2 else []})
    context = {"ip": "10.1.2.3"}
    got = client.check_batch(alice, items, context)
    want = [engine.check({"principal": alice, "action": a, "resource": it["resource"],
                          "context": context, "write_fields": it["write_fields"]})
            for it in items for a in it["actions"]]
    assert len(got) == 15 and all(_same(g, w) for g, w in zip(got, want, strict=True))


def test_decision_ids_are_unique(served):
    _, _, client = served
    ids = {client.check_with_id(req(user(), "read", order()))[1] for _ in range(50)}
    assert len(ids) == 50 and all(ids)


def test_health_and_reflection(served):
    target, _, _ = served
    assert health_status(target) == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(stub.ServerReflectionInfo(iter([
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="policyd.v1.DecisionService")]), timeout=5))
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"policyd.v1.DecisionService", "grpc.health.v1.Health"} <= names
    assert answers[1].file_descriptor_response.file_descriptor_proto


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_answers_both_versions(served, version):
    """Current grpcurl asks grpc.reflection.v1 first; older tools v1alpha. The messages
    are the same on the wire, so v1alpha's classes speak both."""
    target, _, _ = served
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        answers = list(call(iter([
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="policyd.v1.DecisionService")]), timeout=5))
    names = {s.name for s in answers[0].list_services_response.service}
    assert names == {"policyd.v1.DecisionService", "grpc.health.v1.Health",
                     "grpc.reflection.v1.ServerReflection",
                     "grpc.reflection.v1alpha.ServerReflection"}
    assert answers[1].file_descriptor_response.file_descriptor_proto


BAD = [
    ("missing principal", lambda r: r.pop("principal"), "the request needs `principal`"),
    ("missing resource", lambda r: r.pop("resource"), "the request needs `resource`"),
    ("wrong attribute type", lambda r: r["principal"]["attrs"].update(mfa="yes"),
     "principal.attrs.mfa: expected a bool"),
    ("undeclared attribute", lambda r: r["resource"]["attrs"].update(hacked=True),
     "resource.attrs.hacked is not declared"),
    ("bad ip", lambda r: r["context"].update(ip="10.0.0.999"), "context.ip: expected an ip"),
    ("bad time", lambda r: r["context"].update(time="tomorrow"), "context.time: expected a time"),
    ("null attribute", lambda r: r["principal"]["attrs"].update(tenant=None),
     "principal.attrs.tenant: expected a string, found null"),
]


@pytest.mark.parametrize("name,mutate,message", BAD, ids=[b[0] for b in BAD])
def test_invalid_requests_are_invalid_argument(served, name, mutate, message):
    target, _, client = served
    r = copy.deepcopy(req(user(), "read", order()))
    mutate(r)
    with pytest.raises(RequestError, match=message):
        client.check(r)
    alice = user()
    with pytest.raises(RequestError, match="CheckBatch: principal.attrs.mfa"):
        client.check_batch({**alice, "attrs": {**alice["attrs"], "mfa": "no"}},
                           [{"resource": order(), "actions": ["read"]}])


def _raw(target: str, method: str, payload: bytes, timeout=5):
    with grpc.insecure_channel(target, options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        call = channel.unary_unary(method, request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        return call(payload, timeout=timeout)


@pytest.mark.parametrize("method", ["/policyd.v1.DecisionService/Check",
                                    "/policyd.v1.DecisionService/CheckBatch"])
def test_undecodable_bytes_are_refused_and_the_server_lives(served, method, caplog):
    target, _, client = served
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(grpc.RpcError) as exc:
            _raw(target, method, b"\xff\xff\xff\xff\x0f garbage")
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert client.check(req(user(), "read", order())).allowed
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]


def test_oversized_messages_are_resource_exhausted(served):
    target, _, client = served
    big = copy.deepcopy(req(user(), "read", order()))
    big["resource"]["attrs"]["internal_notes"] = "x" * (128 * 1024)
    payload = pb.CheckRequest(action="read", request_id="x" * (128 * 1024)).SerializeToString()
    with pytest.raises(grpc.RpcError) as exc:
        _raw(target, "/policyd.v1.DecisionService/Check", payload)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.check(req(user(), "read", order())).allowed


def test_an_internal_failure_denies_with_error_and_logs_once(served, caplog, monkeypatch):
    target, built, client = served

    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(built.engine, "decide", boom)
    monkeypatch.setattr(built.engine, "decide_batch", boom)
    with caplog.at_level(logging.ERROR, "policyd.server"):
        first = client.check(req(user(), "read", order()))
        second = client.check(req(user(), "read", order()))
        batch = client.check_batch(user(), [{"resource": order(), "actions": ["read", "list"]}])
    assert (first.allowed, first.reasons) == (False, ["error"]) and not second.allowed
    assert [d.reasons for d in batch] == [["error"], ["error"]]
    assert caplog.text.count("failed closed") == 1


def test_client_errors_are_clear():
    with DecisionClient(f"127.0.0.1:{free_port()}", timeout=0.5) as dead:
        with pytest.raises(PolicydUnavailable) as exc:
            dead.check(req(user(), "read", order()))
        assert exc.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        with pytest.raises(RequestError, match="cannot encode"):
            dead.check({**req(user(), "read", order()), "action": 5})


def test_python_sets_travel_as_lists(served):
    _, _, client = served
    alice = user()
    alice["attrs"]["roles"] = {"viewer"}
    assert client.check(req(alice, "list", order(owner="x"))).allowed


def test_stubs_are_fresh(tmp_path):
    """The committed policyd_pb2 was generated from the committed .proto."""
    import subprocess
    import sys

    from google.protobuf import descriptor_pb2

    from .conftest import ROOT

    out = tmp_path / "set.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-Iproto",
                    f"--descriptor_set_out={out}", "proto/policyd/v1/policyd.proto"],
                   cwd=ROOT, check=True)
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    def clear(messages):  # generated modules leave out the derived json names
        for message in messages:
            for f in message.field:
                f.ClearField("json_name")
            clear(message.nested_type)  # map entries (PlanResponse.conditional_fields)
    clear(fresh.message_type)
    committed = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert fresh == committed, \
        "regenerate: python -m grpc_tools.protoc -Iproto --python_out=policyd/_proto " \
        "--pyi_out=policyd/_proto proto/policyd/v1/policyd.proto"


def test_request_examples_decide_the_same_served(served, engine):
    _, _, client = served
    for path in sorted((ORDERS / "requests").glob("*.json")):
        r = json.loads(path.read_text())
        assert _same(client.check(r), engine.check(r)), path.name
