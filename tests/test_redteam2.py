"""Regression tests for the second attack pass and a new user's week (issue #28), one
section per finding that is not tested beside its own feature.

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


GATEWAY = Path(__file__).parent / "envoy" / "gateway.policy"


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


# ---- 3. hot reload installed a data file caught halfway through a rewrite --------------

SUSPENDED = """
principal User { roles: set<string>  suspended?: bool stored }
role viewer
resource Doc { actions read }
policy docs for Doc {
  banned: deny * when principal has suspended and principal.suspended
  allow read when principal is viewer
  show *
}
"""


def test_reload_never_installs_a_data_file_cut_short_mid_rewrite(tmp_path):
    import json
    import threading

    from policyd import Engine
    from policyd.server.reload import PolicyWatcher

    (tmp_path / "set.policy").write_text(SUSPENDED)
    data = tmp_path / "users.data.jsonl"
    lines = [json.dumps({"type": "User", "id": f"u{i}", "attrs": {"suspended": True}}) + "\n"
             for i in range(40)]
    data.write_text("".join(lines))
    engine = Engine.from_path(tmp_path)
    watcher = PolicyWatcher(tmp_path, engine, interval=0.02)
    stop, allowed, decided = threading.Event(), [], [0]

    def rewrite():  # in place, pausing at a line boundary halfway (longer than an interval)
        for _ in range(2):
            with open(data, "w") as f:
                f.write("".join(lines[:20]))
                f.flush()
                time.sleep(0.5)
                f.write("".join(lines[20:]))
            time.sleep(0.3)

    def decide():
        request = {"principal": {"type": "User", "id": "u30", "attrs": {"roles": ["viewer"]}},
                   "action": "read", "resource": {"type": "Doc", "id": "d", "attrs": {}}}
        while not stop.is_set():
            decided[0] += 1
            if engine.check(request).allowed:
                allowed.append(engine.version)

    writer, checker = threading.Thread(target=rewrite), threading.Thread(target=decide)
    watcher.start()
    checker.start()
    writer.start()
    writer.join()
    stop.set()
    checker.join()
    watcher.stop()
    assert decided[0] > 100
    assert allowed == []


# ---- 4. explanations printed sensitive values inside records, maps and roles ----------

LEAKY = """
record Profile { country: string  ssn: string sensitive }
principal User {
  roles: set<string> sensitive
  profile: Profile
  orgs: map<string, Profile>
}
role staff
resource Vault { org: string  actions open }
policy vaults for Vault {
  whole: allow open when resource.org in principal.orgs
    and principal.profile == principal.orgs[resource.org]
  by_map: allow open when resource.org in principal.orgs
    and principal.orgs[resource.org].country == "NZ"
  by_role: allow open when principal is staff
}
"""


def _leaky_request():
    secret = {"country": "FR", "ssn": "123-45-6789"}
    return {"principal": {"type": "User", "id": "u", "attrs": {
                "roles": ["secret-role"], "profile": secret,
                "orgs": {"o1": {"country": "DE", "ssn": "987-65-4321"}}}},
            "action": "open", "resource": {"type": "Vault", "id": "v", "attrs": {"org": "o1"}}}


def _assert_masked(explanation):
    import json
    text = json.dumps(explanation)
    for secret in ("123-45-6789", "987-65-4321", "secret-role"):
        assert secret not in text, secret
    rules = {r["rule"]: r["because"]["values"] for r in explanation["rules"]
             if "because" in r and "values" in r["because"]}
    assert rules["vaults.by_role"] == {"principal.roles": "***"}
    whole = rules["vaults.whole"]
    assert whole["principal.profile"] == {"country": "FR", "ssn": "***"}
    assert whole["principal.orgs"] == {"o1": {"country": "DE", "ssn": "***"}}
    assert explanation["decision"]["warnings"] == ["unknown_role:***"]  # the log's too


def test_explanations_mask_sensitive_values_inside_records_maps_and_roles(tmp_path):
    from policyd import Engine, compile_text
    from policyd.client import DecisionClient

    from .servers import thread_server

    _assert_masked(Engine(compile_text(LEAKY)).explain(_leaky_request()))
    (tmp_path / "vaults.policy").write_text(LEAKY)
    with thread_server(tmp_path, reload=False) as (target, _), \
            DecisionClient(target, timeout=5) as client:
        _assert_masked(client.explain(_leaky_request()))


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


# ---- 9. the entity data loader rewrote line separators and crashed on odd entries -------

TEAMS = """
principal User { roles: set<string>  team: string stored }
role viewer
resource Doc { team: string  actions read }
policy docs for Doc { allow read when principal.team == resource.team  show * }
"""


@pytest.mark.parametrize("suffix", [".data.jsonl", ".data.json"])
def test_line_separators_inside_data_strings_are_kept(tmp_path, suffix):
    import json

    from policyd import Engine

    (tmp_path / "set.policy").write_text(TEAMS)
    entries = [{"type": "User", "id": f"u{i}", "attrs": {"team": team}}
               for i, team in enumerate(["eng\u2028", "ops\u2029x", "a\u0085b", "c\x1cd",
                                         "e\x0bf", "g\x0ch", "plain"])]
    text = "\n".join(json.dumps(e, ensure_ascii=False) for e in entries) \
        if suffix == ".data.jsonl" else json.dumps(entries, ensure_ascii=False)
    (tmp_path / f"users{suffix}").write_text(text + "\r\n", encoding="utf-8", newline="")
    rows = Engine.from_path(tmp_path).policy_set.entities.principals["User"].rows
    assert {k: v["team"] for k, v in rows.items()} == \
        {e["id"]: e["attrs"]["team"] for e in entries}


@pytest.mark.parametrize("entry", [
    {"type": [], "id": "x", "attrs": {}}, {"type": {}, "id": "x"},
    {"type": "User", "id": "x", "kind": {}}, {"type": "User", "id": "x", "kind": []},
    {"type": "User", "id": "x", "kind": "principal", "attrs": {"team": "t"}, "more": 1},
])
def test_odd_data_entries_are_diagnostics_not_crashes(tmp_path, entry, capsys):
    import json

    from policyd.cli import main

    (tmp_path / "set.policy").write_text(TEAMS)
    (tmp_path / "users.data.jsonl").write_text(json.dumps(entry) + "\n")
    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "users.data.jsonl:1:1: error[E502]" in err and "Traceback" not in err


# ---- 10. a lone surrogate in a request turned a refusal into a failure --------------------


def test_a_lone_surrogate_is_an_invalid_argument_naming_it_over_grpc():
    from policyd import RequestError
    from policyd.client import DecisionClient

    from .conftest import EXAMPLES, OFFICE, order, req, user
    from .servers import thread_server

    request = req(user(), "read", order(), {**OFFICE, "\ud800": "x"})
    with thread_server(EXAMPLES / "orders", reload=False) as (target, _), \
            DecisionClient(target, timeout=5) as client:
        for _ in range(2):  # the second over the same channel: the server is still fine
            with pytest.raises(RequestError, match=r"context.*\\ud800.*not declared"):
                client.check(request)
        assert client.check(req(user(), "read", order(), OFFICE)).allowed


# ---- 12. a limit admitted one request too few at one instant ----------------------------

COUNTS = (1, 2, 3, 5, 7, 10, 20, 60, 100, 300, 1000)
PERIODS = {"1s": 1, "7s": 7, "1m": 60, "15m": 900, "1h": 3600, "1d": 86400}
BURSTS = (None, 1, 3, 60)


def _burst_at_one_instant(store, count, period, burst, now) -> list[bool]:
    from policyd.engine.ratelimit import rate

    bucket = [(("r", "k"), *rate(count, period, burst))]
    limit = count if burst is None else burst
    return [store.acquire(bucket, now, False).passed for _ in range(limit + 1)]


@pytest.mark.parametrize("count", COUNTS)
def test_exactly_the_burst_passes_at_one_instant_for_every_combination(count):
    from policyd.engine.ratelimit import MemoryStore

    for period in PERIODS.values():
        for burst in BURSTS:
            now = 1_764_000_000.123457  # an epoch instant: float spacing here is 2.4e-7 s
            got = _burst_at_one_instant(MemoryStore(), count, period, burst, now)
            assert got == [True] * (len(got) - 1) + [False], (count, period, burst)


def test_exactly_the_burst_passes_at_any_instant():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from policyd.engine.ratelimit import MemoryStore

    @settings(max_examples=300, deadline=None, database=None)
    @given(count=st.integers(1, 400), period=st.sampled_from(sorted(PERIODS.values()) +
                                                              [0.5, 1.5, 86400 * 30]),
           burst=st.none() | st.integers(1, 400), now=st.floats(0, 4e9))
    def run(count, period, burst, now):
        got = _burst_at_one_instant(MemoryStore(), count, period, burst, now)
        assert got == [True] * (len(got) - 1) + [False]

    run()


@pytest.mark.parametrize("limit", ["5 per 1s", "300 per 1m burst 60", "3 per 1s",
                                   "7 per 1h burst 7", "100 per 1s burst 20"])
def test_a_policy_limit_admits_its_burst_under_a_frozen_clock(limit):
    from policyd import Engine, compile_text

    text = SUSPENDED.replace("  show *\n", f"  show *\n  limit read: {limit} by principal.id\n")
    engine = Engine(compile_text(text), clock=lambda: 1_764_000_000.5)
    request = {"principal": {"type": "User", "id": "u", "attrs": {"roles": ["viewer"]}},
               "action": "read", "resource": {"type": "Doc", "id": "d", "attrs": {}}}
    words = limit.split()
    burst = int(words[-1]) if "burst" in words else int(words[0])
    got = [engine.check(request).allowed for _ in range(burst + 1)]
    assert got == [True] * burst + [False]


def test_limit_counts_and_bursts_are_whole_tokens(tmp_path):
    from policyd import PolicyError, compile_text

    for bad in ("0.5 per 1s", "5 per 1s burst 2.5", "5 per 0.0000001s",
                "1 per 1d burst 1000000000"):
        text = SUSPENDED.replace("  show *\n", f"  show *\n  limit read: {bad} by principal.id\n")
        with pytest.raises(PolicyError) as err:
            compile_text(text)
        assert "E119" in err.value.render(), bad


# ---- 14. `owns` ignored the principal's type --------------------------------------------

HOSPITAL = """
principal Staff { roles: set<string> }
principal Patient {}
resource Record owned by patient {
  patient: string
  actions read
}
policy records for Record {
  allow read when principal owns resource
  show *
}
"""


def test_a_string_owner_with_several_principal_types_is_warned():
    from policyd import compile_text

    ps = compile_text(HOSPITAL)
    [warning] = [w for w in ps.warnings if w.code == "W207"]
    assert "Patient, Staff" in warning.message and "principal.type ==" in warning.hint
    one_type = HOSPITAL.replace("principal Staff { roles: set<string> }\n", "")
    assert not [w for w in compile_text(one_type).warnings if w.code == "W207"]


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


# ---- 16. smaller findings of the new user's week -----------------------------------------


def test_engine_data_takes_one_path_or_several(tmp_path):
    import json

    from policyd import Engine

    (tmp_path / "set.policy").write_text(TEAMS)
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps([{"type": "User", "id": "u",
                                                  "attrs": {"team": "t"}}]))
    for given in (str(data), data, [str(data)], (data,)):
        engine = Engine.from_path(tmp_path / "set.policy", data=given)
        assert engine.policy_set.entities.principals["User"].rows == {"u": {"team": "t"}}


RECORDS = """
record Queue { name: string  locked: bool }
principal User { roles: set<string> }
role admin
resource Ticket { queue: Queue  hiv_status: string  actions read, export }
policy t for Ticket {
  allow read when principal is admin
  SHOWN
}
"""


@pytest.mark.parametrize("rule, words", [
    ("show queue.name", "E131]: `queue.name`: a record is shown or written whole"),
    ("write queue.locked when principal is admin", "E131]: `queue.locked`: a record is "
                                                    "shown or written whole"),
    ("allow read.x when principal is admin", "E131]: `read.x`: actions are plain names"),
    ("show hiv", "E118]: `Ticket` declares no field `hiv`"),
])
def test_paths_in_show_and_write_are_diagnostics_with_hints(rule, words):
    from policyd import PolicyError, compile_text

    with pytest.raises(PolicyError) as err:
        compile_text(RECORDS.replace("SHOWN", rule))
    text = err.value.render()
    assert words in text
    hint = {"show hiv": "did you mean `hiv_status`?", "show queue.name": "write `queue`",
            "write queue.locked when principal is admin": "write `queue`"}.get(rule)
    assert hint is None or f"hint: {hint}" in text


def test_a_repeat_count_may_come_before_the_reasons(tmp_path):
    from policyd.testing import Runner, discover, load

    (tmp_path / "t.policy").write_text(RECORDS.replace("SHOWN", "no_export: deny export"))
    (tmp_path / "t.test.policy").write_text("""
fixture admin = principal User "a" { roles: ["admin"] }
fixture ticket = resource Ticket "t1" { queue: { name: "q", locked: false }, hiv_status: "" }
test "both orders" {
  given admin, ticket
  expect deny export x4 by t.no_export
  expect deny export by t.no_export x4
  expect allow read x2
}
""")
    suite = load(discover(tmp_path)[0])
    assert [r.status for r in Runner(suite.policy_set).run(suite.tests)] == ["passed"]


def test_long_not_chains_are_broken_by_the_formatter():
    from policyd.language.layout import WIDTH
    from policyd.language.printer import format_policy

    text = RECORDS.replace("SHOWN", 'fence: deny read when not (principal is admin and '
                           'resource.hiv_status == "negative" and resource.queue.locked and '
                           'resource.queue.name == "a-rather-long-queue-name")')
    out = format_policy(text)
    assert max(map(len, out.splitlines())) <= WIDTH, out
    assert format_policy(out) == out


# ---- 7. an AuthZEN search decided and logged every entity, on the event loop ----------------

CROWD = """
principal User { roles: set<string> stored  team: string stored }
role viewer
resource Doc { owner: string stored  team: string stored  actions read }
policy docs for Doc {
  allow read when principal is viewer and principal.team == resource.team
  allow read when resource.owner == principal.id
  show *
}
"""


def _crowd(tmp_path, users: int, docs: int) -> Path:
    import json
    root = tmp_path / "crowd"
    root.mkdir()
    (root / "docs.policy").write_text(CROWD)
    with open(root / "users.data.jsonl", "w") as f:
        for i in range(users):
            f.write(json.dumps({"type": "User", "id": f"u{i:06d}", "attrs": {
                "roles": ["viewer"] if i % 3 == 0 else [], "team": f"t{i % 50}"}}) + "\n")
    with open(root / "docs.data.jsonl", "w") as f:
        for i in range(docs):
            f.write(json.dumps({"type": "Doc", "id": f"d{i:06d}", "attrs": {
                "owner": f"u{i % 1000:06d}", "team": f"t{i % 50}"}}) + "\n")
    return root


def test_searches_are_one_record_off_the_event_loop_and_pages_walk_once(tmp_path):
    import json
    import threading

    import httpx

    from .test_authzen import _post, _serve

    root = _crowd(tmp_path, 200_002, 3000)
    server, url = _serve(tmp_path, root)
    log = tmp_path / "decisions.jsonl"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            body = {"subject": {"type": "User"}, "action": {"name": "read"},
                    "resource": {"type": "Doc", "id": "d000007"}, "page": {"limit": 1}}
            before = len(log.read_text().splitlines()) if log.exists() else 0
            done, answers = threading.Event(), {}

            def search():
                answers["search"] = _post(client, "/access/v1/search/subject", body)
                done.set()

            thread = threading.Thread(target=search)
            thread.start()
            time.sleep(0.05)
            health = httpx.get(url + "/healthz", timeout=10)  # answered while it searches
            assert health.status_code == 200 and not done.is_set()
            thread.join()
            first = answers["search"].json()
            # u000007 owns d000007; viewers of team t7 (every 3rd user, i % 50 == 7)
            assert first["page"]["total"] == 1 + sum(
                1 for i in range(200_002) if i % 3 == 0 and i % 50 == 7 and i != 7)
            assert [r["id"] for r in first["results"]] == ["u000007"]
            time.sleep(0.3)
            records = log.read_text().splitlines()[before:]
            assert len(records) == 1 and json.loads(records[0])["search"] == "subject"

            # a resource search is a plan over the data; walk every page of 7
            walk = {"subject": {"type": "User", "id": "u000003"},
                    "action": {"name": "read"}, "resource": {"type": "Doc"},
                    "page": {"limit": 7}}
            seen, token = [], None
            while True:
                if token:
                    walk["page"] = {"limit": 7, "token": token}
                page = _post(client, "/access/v1/search/resource", walk).json()
                seen += [r["id"] for r in page["results"]]
                token = page["page"]["next_token"]
                if not token:
                    break
            expected = [f"d{i:06d}" for i in range(3000) if i % 50 == 3 or i % 1000 == 3]
            assert seen == expected and page["page"]["total"] == len(expected)
    finally:
        server.terminate()


# ---- 5. plans and per-row check disagreed, SQL returning more rows ------------------------

DATED = """
principal User { roles: set<string> }
role viewer
resource Post {
  created: time
  host: ip
  price: number
  qty: number
  actions read, audit, buy
}
policy posts for Post {
  allow read when principal is viewer and resource.created > time("2025-01-01T00:00:00Z")
  allow audit when principal is viewer and resource.host in [ip("10.0.0.0/8")]
  allow buy when principal is viewer and resource.price * resource.qty < 100
  show price when resource.price > 1
}
"""
VIEWER = {"type": "User", "id": "u", "attrs": {"roles": ["viewer"]}}


def _post_plan(action: str):
    from policyd import Engine, compile_text
    return Engine(compile_text(DATED)).plan({"principal": VIEWER, "action": action,
                                             "resource": {"type": "Post"}})


def test_a_sqlalchemy_datetime_column_in_sqlite_is_compared_as_a_time(tmp_path):
    import datetime as dt

    import sqlalchemy as sa

    from policyd.plans import PlanUntranslatable
    from policyd.plans.sqlalchemy import where

    engine = sa.create_engine(f"sqlite:///{tmp_path}/posts.db")
    meta = sa.MetaData()
    posts = sa.Table("posts", meta, sa.Column("id", sa.String, primary_key=True),
                     sa.Column("created", sa.DateTime), sa.Column("label", sa.String))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(posts.insert(), [
            {"id": "old", "created": dt.datetime(2020, 6, 1), "label": "2020-06-01"},
            {"id": "new", "created": dt.datetime(2026, 6, 1), "label": "2026-06-01"},
            {"id": "edge", "created": dt.datetime(2025, 1, 1), "label": "x"}])
    plan = _post_plan("read")
    with engine.connect() as conn:  # was: the 2020 row, compared as text with an epoch
        got = {r[0] for r in conn.execute(sa.select(posts.c.id).where(
            where(plan, {"id": posts.c.id, "created": posts.c.created})))}
    assert got == {"new"}
    with pytest.raises(PlanUntranslatable, match="`created` is a time"), \
            engine.connect() as conn:  # a string column holds no time the contract knows
        conn.execute(sa.select(posts.c.id).where(
            where(plan, {"id": posts.c.id, "created": posts.c.label})))


def test_untranslatable_names_the_attribute_and_the_rule():
    from policyd.plans import PlanUntranslatable, to_sql

    with pytest.raises(PlanUntranslatable) as err:
        to_sql(_post_plan("audit"), {"host": "host"}, "sqlite")
    assert err.value.attribute == "host" and err.value.rule == "posts#2"
    assert "`host` is an ip" in str(err.value) and "posts#2" in str(err.value)
    with pytest.raises(PlanUntranslatable, match="arithmetic") as err:  # PostgreSQL raises
        to_sql(_post_plan("buy"), {"price": "price", "qty": "qty"}, "postgresql")
    assert err.value.attribute in ("price", "qty")


def test_overflowing_arithmetic_is_unknown_in_sqlite_not_infinite():
    import sqlite3

    from policyd.plans import to_sql

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE p (id TEXT, price REAL, qty REAL)")
    conn.executemany("INSERT INTO p VALUES (?,?,?)", [("a", 2, 3), ("big", -1e300, 1e300),
                                                      ("nan", 1e300, 1e300)])
    where, params = to_sql(_post_plan("buy"), {"id": "id", "price": "price", "qty": "qty"})
    # -1e300 * 1e300 is -inf < 100 in floats, but no finite number: not allowed
    assert {r[0] for r in conn.execute(f"SELECT id FROM p WHERE {where}", params)} == {"a"}


def test_the_select_list_is_never_empty():
    import sqlite3

    from policyd import Engine, compile_text
    from policyd.plans import to_sql, to_sql_columns

    engine = Engine(compile_text(DATED))
    denied = engine.plan({"principal": {"type": "User", "id": "u", "attrs": {"roles": []}},
                          "action": "read", "resource": {"type": "Post"}})
    assert denied.kind == "always_denied"
    select, params = to_sql_columns(denied, {"id": "id", "price": "price"})
    where, wparams = to_sql(denied, {"id": "id"})
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE p (id TEXT, price REAL)")
    assert conn.execute(f"SELECT {select} FROM p WHERE {where}", params + wparams).fetchall() \
        == []
    assert to_sql_columns(denied, {})[0] == "NULL AS id"


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
