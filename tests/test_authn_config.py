"""The serve configuration file, JWT settings, and the Envoy authorizer's other ways to
know the caller (an mTLS peer, the payload Envoy's jwt_authn verified)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from envoy.service.auth.v3 import external_auth_pb2 as ea

from policyd import Engine
from policyd.authn import JwtSettings, JwtVerifier, KeySet, TokenError
from policyd.cli import main
from policyd.server.config import EnvoySettings
from policyd.server.config_file import ConfigError, build_config
from policyd.server.envoy import EnvoyAuthorizer

from .conftest import EXAMPLES
from .gateway import Keys

GATEWAY = Path(__file__).parent / "envoy" / "gateway.policy"


@pytest.fixture()
def jwks(tmp_path) -> Path:
    path = tmp_path / "keys" / "jwks.json"
    path.parent.mkdir()
    path.write_text(Keys().jwks())
    return path


FULL = """
[server]
path = "{policy}"
port = 50999
decision_log = "logs/decisions.jsonl"
data = ["extra"]

[authn.jwt]
issuers = ["https://idp.example"]
audiences = ["orders-api"]
jwks = "keys/jwks.json"
algorithms = ["RS256", "ES256", "EdDSA"]
leeway_s = 30
jwks_refresh_s = 300
principal_type = "User"

[authn.jwt.claims]
roles = "roles"
tenant = "tenant"

[authn.mtls]
principal_type = "Service"

[envoy]
context_headers = {{ country = "x-country" }}
"""


def test_a_whole_file_loads_with_paths_relative_to_it_and_flags_over_it(tmp_path, jwks):
    f = tmp_path / "policyd.toml"
    f.write_text(FULL.format(policy=EXAMPLES / "orders"))
    cfg = build_config(f, {"port": 51000})
    assert cfg.port == 51000 and cfg.decision_log == str(tmp_path / "logs/decisions.jsonl")
    assert cfg.data == [tmp_path / "extra"] and cfg.authn.jwt.jwks == str(jwks)
    assert cfg.authn.jwt.claims == {"roles": "roles", "tenant": "tenant"}
    assert cfg.authn.mtls.principal_type == "Service"
    assert cfg.envoy.context_headers == {"country": "x-country"} and cfg.envoy.enabled is None
    assert build_config(f, {"envoy": True}).envoy.enabled is True


@pytest.mark.parametrize("change, words", [
    (("port = 50999", "prot = 50999"), "prot: unknown key"),
    (("port = 50999", 'port = "x"'), "port: Input should be a valid integer"),
    (("[envoy]", "[envoi]"), "unknown section or key `envoi`"),
    (("leeway_s = 30", "leewy_s = 30"), "authn.jwt.leewy_s: unknown key"),
    (('algorithms = ["RS256", "ES256", "EdDSA"]', 'algorithms = ["HS256"]'),
     "authn.jwt.algorithms.0"),
    (('algorithms = ["RS256", "ES256", "EdDSA"]', 'algorithms = ["none"]'),
     "authn.jwt.algorithms.0"),
    (('jwks = "keys/jwks.json"', 'jwks = "http://idp.example/jwks"'),
     "an http:// URL only on 127.0.0.1"),
    (('jwks = "keys/jwks.json"', 'jwks = "keys/missing.json"'), "no such file"),
    (("[server]", "[server\n"), "not valid TOML"),
])
def test_a_bad_file_is_an_error_naming_the_key(tmp_path, jwks, change, words):
    f = tmp_path / "policyd.toml"
    f.write_text(FULL.format(policy=EXAMPLES / "orders").replace(*change))
    with pytest.raises(ConfigError) as err:
        build_config(f, {})
    assert words in str(err.value) and str(f) in str(err.value)


def test_policyd_check_validates_a_config_file(tmp_path, jwks, capsys):
    f = tmp_path / "policyd.toml"
    f.write_text(FULL.format(policy=GATEWAY).replace('data = ["extra"]', ""))
    assert main(["check", "--config", str(f)]) == 0
    assert capsys.readouterr().out.startswith("ok:")
    f.write_text(FULL.format(policy=GATEWAY).replace("port =", "prot ="))
    assert main(["check", "--config", str(f)]) == 1
    assert "prot: unknown key" in capsys.readouterr().err


def test_an_unknown_kid_refetches_at_most_once_per_interval(jwks):
    now = [0.0]
    keys = KeySet(str(jwks), refresh_s=300, clock=lambda: now[0])
    for _ in range(50):
        assert keys.get("nope") is None
    assert keys.fetches == 1  # the first load only
    now[0] = 301
    keys.get("nope")
    assert keys.fetches == 2


def _settings(jwks: Path, **more) -> JwtSettings:
    return JwtSettings(issuers=["https://idp.test"], audiences=["orders-api"], jwks=str(jwks),
                       principal_type="User", claims={"roles": "roles", "tenant": "tenant"},
                       **more)


def _envoy_request(path: str, method: str = "GET", **attrs) -> ea.CheckRequest:
    req = ea.CheckRequest()
    req.attributes.request.http.method = method
    req.attributes.request.http.path = path
    req.attributes.source.address.socket_address.address = "10.1.2.3"
    for key, value in attrs.items():
        if key == "principal":
            req.attributes.source.principal = value
        elif key == "payload":
            meta = req.attributes.metadata_context.filter_metadata[
                "envoy.filters.http.jwt_authn"]
            meta.update({"jwt_payload": value})
    return req


def test_an_mtls_peer_is_the_configured_service_principal(jwks):
    engine = Engine.from_path(GATEWAY)
    authz = EnvoyAuthorizer(engine, EnvoySettings(), JwtVerifier(_settings(jwks)),
                            mtls_type="Service")
    ok = authz.check(_envoy_request("/health", principal="spiffe://prod/sa/probe"), None)
    headers = {h.header.key: h.header.value for h in ok.ok_response.headers}
    assert ok.status.code == 0 and headers["x-policyd-principal-type"] == "Service"
    assert headers["x-policyd-principal-id"] == "spiffe://prod/sa/probe"
    denied = authz.check(_envoy_request("/health"), None)  # no peer, no token
    assert denied.denied_response.status.code == 401


def test_the_payload_envoy_verified_can_be_trusted_instead(jwks):
    engine = Engine.from_path(GATEWAY)
    authz = EnvoyAuthorizer(engine, EnvoySettings(), JwtVerifier(_settings(jwks)),
                            trust_jwt_metadata=True)
    payload = {"sub": "alice", "roles": ["viewer"], "tenant": "t1"}
    ok = authz.check(_envoy_request("/orders", "POST", payload=payload), None)
    assert ok.status.code == 0
    missing = authz.check(_envoy_request("/orders", "POST"), None)
    assert missing.denied_response.status.code == 401
    assert json.loads(missing.denied_response.body)["error"] == "unauthenticated"


def test_a_token_without_sub_is_refused(jwks):
    verifier = JwtVerifier(_settings(jwks))
    with pytest.raises(TokenError, match="sub"):
        verifier.principal({"roles": []})


def test_a_remembered_token_still_expires_and_a_key_change_forgets_it(tmp_path):
    keys = Keys()
    path = tmp_path / "jwks.json"
    path.write_text(keys.jwks())
    now = [time.time()]
    verifier = JwtVerifier(_settings(path), clock=lambda: now[0])
    token = keys.token(exp=int(now[0]) + 60)
    assert verifier.verify(token)["id"] == "alice"
    assert verifier.verify(token)["id"] == "alice"  # remembered
    now[0] += 1000
    with pytest.raises(TokenError, match="expired"):
        verifier.verify(token)
    now[0] -= 1000
    keys.published.remove("r1")  # the issuer rotates r1 out
    path.write_text(keys.jwks())
    verifier.keys.refresh(force=True)
    with pytest.raises(TokenError, match="unknown signing key"):
        verifier.verify(token)
