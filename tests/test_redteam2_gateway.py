"""Regression tests for the second attack pass and a new user's week (issue #28): the
gateway: tokens, the client's address, JWKS, configuration (items 1, 2, 6, 11, 13, and
what held).

Each test failed on the code before the fix; the note of issue #28 lists them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from policyd.authn import JwtSettings, JwtVerifier, TokenError

from .gateway import Keys


def _jwt_settings(jwks: Path, **more) -> JwtSettings:
    return JwtSettings(issuers=["https://idp.test"], audiences=["orders-api"], jwks=str(jwks),
                       principal_type="User", claims={"roles": "roles", "tenant": "tenant"},
                       **more)


GATEWAY = Path(__file__).parent / "envoy" / "gateway.policy"


# ---- 1. a token whose `exp` is a numeric string never expired once remembered ---------


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["{}", True, None, [1], {"n": 1}])
def test_time_claims_that_are_not_numbers_are_refused(tmp_path, claim, value):
    keys = Keys()
    (tmp_path / "jwks.json").write_text(keys.jwks())
    verifier = JwtVerifier(_jwt_settings(tmp_path / "jwks.json"))
    now = int(time.time())
    text = {"exp": str(now + 300), "nbf": str(now - 10), "iat": str(now - 10)}[claim]
    value = text if value == "{}" else value
    token = keys.token(**{claim: value}) if value is not None else _with_null(keys, claim)
    # a null `exp` is a missing one (PyJWT's required claims); every other case says why
    words = "lacks the 'exp' claim" if (claim, value) == ("exp", None) else \
        f"`{claim}` claim is not a number"
    with pytest.raises(TokenError, match=words):
        verifier.verify(token)


def _with_null(keys: Keys, claim: str) -> str:
    import jwt
    now = int(time.time())
    body = {"iss": "https://idp.test", "aud": "orders-api", "sub": "alice", "iat": now,
            "exp": now + 300, claim: None}
    return jwt.encode(body, keys.private["r1"], algorithm="RS256", headers={"kid": "r1"})


def test_a_remembered_token_is_checked_again_whatever_it_was_accepted_with(tmp_path):
    keys = Keys()
    (tmp_path / "jwks.json").write_text(keys.jwks())
    now = [time.time()]
    verifier = JwtVerifier(_jwt_settings(tmp_path / "jwks.json"), clock=lambda: now[0])
    token = keys.token(exp=int(now[0]) + 10)
    claims = verifier.claims(token)
    claims["exp"] = str(int(now[0]) + 10)  # as if accepted as a string before the fix
    now[0] += 45
    with pytest.raises(TokenError, match="not a number"):
        verifier.claims(token)


# ---- 2. the gateway believed the client's part of X-Forwarded-For ---------------------




def _report_request(peer: str, xff: list[str] | None, raw: bool = True, **headers):
    from envoy.service.auth.v3 import external_auth_pb2 as ea

    req = ea.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path = "GET", "/orders/o1/report"
    req.attributes.source.address.socket_address.address = peer
    pairs = [("authorization", "Bearer x")] + [("x-forwarded-for", v) for v in xff or ()]
    pairs += list(headers.items())
    for key, value in pairs:
        if raw:
            h = http.header_map.headers.add()
            h.key, h.raw_value = key, value.encode()
        else:
            http.headers[key] = f"{http.headers[key]},{value}" if key in http.headers else value
    return req


class _Verifier:
    def verify(self, token):
        return {"type": "User", "id": "alice", "attrs": {"roles": ["viewer"], "tenant": "t1"}}


def _gateway(hops: int = 0, **settings):
    from policyd import Engine
    from policyd.server.config import EnvoySettings
    from policyd.server.envoy import EnvoyAuthorizer

    return EnvoyAuthorizer(Engine.from_path(GATEWAY),
                           EnvoySettings(xff_num_trusted_hops=hops, **settings), _Verifier())


def _status(authz, req) -> int:
    out = authz.check(req, None)
    return 200 if out.status.code == 0 else out.denied_response.status.code


@pytest.mark.parametrize("hops,peer,xff,status", [
    # no trusted hops: the address Envoy saw, whatever the header says
    (0, "127.0.0.1", ["10.1.2.3"], 403),
    (0, "10.1.2.3", ["192.0.2.1"], 200),
    # one trusted proxy (peer 203.0.113.7) appended the client's address after a forgery
    (1, "203.0.113.7", ["10.1.2.3, 198.51.100.4"], 403),
    (1, "203.0.113.7", ["198.51.100.4, 10.1.2.3"], 200),
    # Envoy (use_remote_address) appended the proxy's address itself: the same answer
    (1, "203.0.113.7", ["10.1.2.3, 198.51.100.4, 203.0.113.7"], 403),
    (1, "203.0.113.7", ["10.1.2.3", "198.51.100.4"], 403),  # the header sent twice
    # two trusted proxies: the third address from the right is the client's
    (2, "203.0.113.7", ["10.9.9.9, 198.51.100.4, 192.0.2.8"], 403),
    (2, "203.0.113.7", ["192.0.2.1, 10.9.9.9, 192.0.2.8"], 200),
    # fewer addresses than trusted hops: the address Envoy saw
    (2, "203.0.113.7", ["10.1.2.3"], 403),
    # a forged non-address where the client's belongs: a bad request, never allowed
    (1, "203.0.113.7", ["10.1.2.3, not-an-ip"], 400),
])
def test_the_client_address_follows_the_trusted_hops_rule(hops, peer, xff, status):
    assert _status(_gateway(hops), _report_request(peer, xff)) == status


def test_ip_header_without_trusted_hops_is_a_configuration_error():
    from pydantic import ValidationError

    from policyd.server.config import EnvoySettings
    with pytest.raises(ValidationError, match="xff_num_trusted_hops"):
        EnvoySettings(ip_header="x-forwarded-for")


@pytest.mark.parametrize("raw", [True, False])
def test_a_repeated_context_header_is_a_bad_request(raw):
    authz = _gateway(context_headers={"country": "x-country"})
    req = _report_request("10.1.2.3", None, raw)
    h = req.attributes.request.http
    if raw:
        for value in ("FR", "KP"):
            entry = h.header_map.headers.add()
            entry.key, entry.raw_value = "x-country", value.encode()
    else:
        h.headers["x-country"] = "FR,KP"  # how Envoy joins them without encode_raw_headers
    assert _status(authz, req) == 400
    one = _report_request("10.1.2.3", None, raw, **{"x-country": "FR"})
    assert _status(authz, one) == 200


# ---- 6. a slow JWKS endpoint and made-up kids stalled every call ----------------------


def test_a_trickling_jwks_endpoint_stalls_no_caller(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from policyd.authn import KeySet

    keys = Keys()
    served = {"n": 0}

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self):
            served["n"] += 1
            body = keys.jwks().encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if served["n"] == 1:  # the first load at start is quick
                self.wfile.write(body)
                return
            for i in range(len(body)):  # then a byte every 0.1 s: 40 s for the document
                try:
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        keyset = KeySet(url, refresh_s=1, timeout=1.0)
        (tmp_path / "jwks.json").write_text(keys.jwks())  # the settings need a file
        verifier = JwtVerifier(_jwt_settings(tmp_path / "jwks.json"), keys=keyset)
        time.sleep(1.05)  # the keys are now due for a refresh
        started = time.monotonic()
        for i in range(30):  # made-up kids: each refused at once, one fetch at a time
            with pytest.raises(TokenError, match="unknown signing key"):
                verifier.verify(_token_with_kid(keys, f"made-up-{i}"))
            assert verifier.verify(keys.token(sub=f"user{i}"))["id"] == f"user{i}"
        assert time.monotonic() - started < 1.0  # 60 verifications, none waiting on it
        end = time.monotonic() + 5
        while keyset._fetching and time.monotonic() < end:
            time.sleep(0.05)
        assert not keyset._fetching  # the trickle was abandoned at its deadline
        assert keyset.fetches <= 3
    finally:
        server.shutdown()
        server.server_close()


def _token_with_kid(keys: Keys, kid: str) -> str:
    import jwt
    now = int(time.time())
    return jwt.encode({"iss": "https://idp.test", "aud": "orders-api", "sub": "x",
                       "exp": now + 60}, keys.private["r1"], algorithm="RS256",
                      headers={"kid": kid})


# ---- 11. smaller gateway findings --------------------------------------------------------


def test_an_indented_comment_in_the_pep_token_file_is_not_a_token(tmp_path):
    from pydantic import ValidationError

    from policyd.server.config import AuthZenSettings, pep_tokens

    f = tmp_path / "pep-tokens.txt"
    f.write_text("# current\nt0k3n-a\n  # old-token\n\t#retired\n\n  t0k3n-b  \n")
    assert pep_tokens(f) == (b"t0k3n-a", b"t0k3n-b")
    f.write_text("t0k3n-a old-token\n")  # two words on a line: neither is used as given
    with pytest.raises(ValidationError, match=r"pep-tokens.txt:1: not one token"):
        AuthZenSettings(pep_tokens=f)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:@evil.example/jwks.json",  # userinfo: the host is evil.example
    "http://127.0.0.1.evil.example/jwks.json",
    "http://localhost.evil.example:80/jwks.json",
    "http://evil.example/jwks.json",
    "ftp://127.0.0.1/jwks.json",
    "http://127.0.0.1:99999/jwks.json",
])
def test_the_jwks_url_is_parsed_not_prefix_matched(url):
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="authn.jwt.jwks"):
        JwtSettings(issuers=["i"], audiences=["a"], jwks=url, principal_type="User")


def test_a_jwks_redirect_is_never_followed(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from policyd.authn import KeySet

    keys, hits = Keys(), []

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if self.path == "/jwks.json":
                self.send_response(302)
                self.send_header("location", "/elsewhere.json")
                self.end_headers()
                return
            body = keys.jwks().encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        keyset = KeySet(f"http://127.0.0.1:{server.server_address[1]}/jwks.json", 300)
        assert keyset.get("r1") is None and hits == ["/jwks.json"]
    finally:
        server.shutdown()
        server.server_close()


# ---- 13. the gateway's configuration was not checked against the schema ------------------

CONFIG = """
[server]
path = "{policy}"
reload = false

[authn.jwt]
issuers = ["https://idp.test"]
audiences = ["orders-api"]
jwks = "jwks.json"
principal_type = "{ptype}"

[authn.jwt.claims]
{claims}

[authn.mtls]
principal_type = "{mtls}"

[envoy]
context_headers = {{ {headers} }}
"""
FITTING = {"ptype": "User", "claims": 'roles = "roles"\ntenant = "tenant"',
           "mtls": "Service", "headers": 'country = "x-country"'}


@pytest.mark.parametrize("change, words", [
    ({"ptype": "Usr"}, "authn.jwt.principal_type: `Usr` is not a declared principal type "
                       "(declared: User, Service); did you mean `User`?"),
    ({"claims": 'roles = "roles"'}, "authn.jwt.claims: principal `User` requires `tenant`, "
                                    "and no claim is mapped to it"),
    ({"claims": 'roles = "roles"\ntenant = "tenant"\nteam = "t"'},
     "authn.jwt.claims.team: principal `User` declares no attribute `team`"),
    ({"mtls": "Robot"}, "authn.mtls.principal_type: `Robot` is not a declared principal type"),
    ({"mtls": "User"}, "authn.mtls.principal_type: an mTLS caller has only an id, and "
                       "principal `User` requires `roles`, `tenant`"),
    ({"headers": 'contry = "x-country"'}, "envoy.context_headers.contry: the context declares "
                                          "no attribute `contry`"),
    ({"headers": 'ip = "x-real-ip"'}, "envoy.context_headers.ip: context.ip is set by the "
                                      "gateway"),
])
def test_a_configuration_naming_what_the_set_lacks_fails_check_and_serve(
        tmp_path, capsys, change, words):
    import subprocess
    import sys

    from policyd.cli import main

    keys = Keys()
    (tmp_path / "jwks.json").write_text(keys.jwks())
    config = tmp_path / "policyd.toml"
    config.write_text(CONFIG.format(policy=GATEWAY, **{**FITTING, **change}))
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert words in err and str(config) in err
    served = subprocess.run([sys.executable, "-m", "policyd", "serve", "--config", str(config),
                             "--port", "0"], capture_output=True, text=True, timeout=60)
    assert served.returncode == 1 and words in served.stderr


def test_a_fitting_configuration_checks(tmp_path, capsys):
    from policyd.cli import main

    (tmp_path / "jwks.json").write_text(Keys().jwks())
    config = tmp_path / "policyd.toml"
    config.write_text(CONFIG.format(policy=GATEWAY, **FITTING))
    assert main(["check", "--config", str(config)]) == 0


def test_the_envoy_page_configuration_works_as_written(tmp_path, capsys):
    """docs/envoy.md's TOML, with its relative paths, beside a checkout's policies/."""
    import re

    from policyd.cli import main

    from .conftest import ROOT

    text = (ROOT / "docs" / "envoy.md").read_text(encoding="utf-8")
    toml = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "policies").symlink_to(ROOT / "policies")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "jwks.json").write_text(Keys().jwks())
    (tmp_path / "policyd.toml").write_text(toml)
    assert main(["check", "--config", str(tmp_path / "policyd.toml")]) == 0, \
        capsys.readouterr().err


def test_a_reload_the_configuration_no_longer_fits_is_refused(tmp_path, caplog):
    from policyd import Engine
    from policyd.server.config_file import build_config
    from policyd.server.config_schema import schema_problems
    from policyd.server.reload import PolicyWatcher

    (tmp_path / "jwks.json").write_text(Keys().jwks())
    (tmp_path / "set.policy").write_text(GATEWAY.read_text())
    config = tmp_path / "policyd.toml"
    config.write_text(CONFIG.format(policy=tmp_path / "set.policy", **FITTING))
    cfg = build_config(config, {})
    engine = Engine.from_path(tmp_path / "set.policy")
    before = engine.version
    watcher = PolicyWatcher(tmp_path / "set.policy", engine,
                            fits=lambda ps: schema_problems(cfg, ps.schema))
    (tmp_path / "set.policy").write_text(GATEWAY.read_text().replace("principal User",
                                                                    "principal Person"))
    with caplog.at_level("ERROR", "policyd.reload"):
        assert not watcher.reload() and engine.version == before
    assert "does not fit" in caplog.text and "`User` is not a declared" in caplog.text


# ---- what held in the attack pass: each a test, so it keeps holding ----------------------


@pytest.mark.parametrize("case", ["kid_number", "kid_list", "alg_number", "nbf_future",
                                  "iat_future", "garbage"])
def test_odd_tokens_stay_refused(tmp_path, case):
    import base64
    import json

    keys = Keys()
    (tmp_path / "jwks.json").write_text(keys.jwks())
    verifier = JwtVerifier(_jwt_settings(tmp_path / "jwks.json"))
    now = int(time.time())
    token = {
        "kid_number": lambda: _with_header(keys, {"alg": "RS256", "kid": 1}),
        "kid_list": lambda: _with_header(keys, {"alg": "RS256", "kid": ["r1"]}),
        "alg_number": lambda: _with_header(keys, {"alg": 256, "kid": "r1"}),
        "nbf_future": lambda: keys.token(nbf=now + 3600),
        "iat_future": lambda: keys.token(iat=now + 3600),
        "garbage": lambda: "eyJ." + base64.urlsafe_b64encode(json.dumps(
            {"sub": "alice"}).encode()).decode() + ".x",
    }[case]()
    with pytest.raises(TokenError):
        verifier.verify(token)


def _with_header(keys: Keys, header: dict) -> str:
    import base64
    import json
    good = keys.token().split(".")
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    return ".".join([head, good[1], good[2]])


def test_a_garbage_jwks_loads_no_keys_and_refuses_every_token(tmp_path, caplog):
    from policyd.authn import KeySet

    (tmp_path / "jwks.json").write_text('{"keys": [{"kty": "RSA", "n": "!!", "e": 3}]')
    keys = Keys()
    with caplog.at_level("ERROR", "policyd.authn"):
        keyset = KeySet(str(tmp_path / "jwks.json"), 300)
    assert "cannot load the JWKS" in caplog.text and keyset.get("r1") is None
    verifier = JwtVerifier(_jwt_settings(tmp_path / "jwks.json"), keys=keyset)
    with pytest.raises(TokenError, match="unknown signing key"):
        verifier.verify(keys.token())


def test_a_60_kb_bearer_token_is_refused_before_it_is_parsed():
    from policyd.authn import bearer
    with pytest.raises(TokenError, match="over 16,384 bytes"):
        bearer("Bearer " + "x" * 60_000)


def test_a_token_in_the_query_string_is_not_a_token():
    from envoy.service.auth.v3 import external_auth_pb2 as ea

    req = ea.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path = "GET", "/orders?access_token=abc.def.ghi"
    req.attributes.source.address.socket_address.address = "10.1.2.3"
    from policyd import Engine
    from policyd.server.config import EnvoySettings
    from policyd.server.envoy import EnvoyAuthorizer

    class Trusting:  # would let anything through, if it were ever asked
        def verify(self, token):
            raise AssertionError("a query-string token was verified")

    authz = EnvoyAuthorizer(Engine.from_path(GATEWAY), EnvoySettings(), Trusting())
    out = authz.check(req, None)
    assert out.denied_response.status.code == 401


def test_a_number_past_2_53_is_a_request_error_not_a_bucket_key():
    """Item 11: a 4,300-digit number made a 2 KB rate bucket key; numbers are doubles now
    (within +-2**53 when integers), so it never reaches a key."""
    from policyd import Engine, RequestError, compile_text

    text = """
principal User { roles: set<string>  n: number }
role viewer
resource Doc { actions read }
policy d for Doc { allow read when principal is viewer  show *
  limit read: 5 per 1m by principal.n }
"""
    engine = Engine(compile_text(text))
    request = {"principal": {"type": "User", "id": "u", "attrs": {"roles": ["viewer"],
                                                                   "n": 10 ** 4300}},
               "action": "read", "resource": {"type": "Doc", "id": "d", "attrs": {}}}
    with pytest.raises(RequestError, match=r"principal.attrs.n: .*4301-digit.*beyond "
                                           r"\+-2\*\*53"):
        engine.check(request)
    request["principal"]["attrs"]["n"] = 2 ** 53
    assert engine.check(request).allowed
