"""Attacks on the example orders API (examples/orders_api), over real HTTP against the
app under uvicorn, with policyd in process and beside it (`policyd serve`): for each
OWASP API risk the attack, its exact refusal, and that nothing was read out or changed
in the database."""

from __future__ import annotations

import random

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import event, select

from examples.orders_api.app import Settings, create_app
from examples.orders_api.db import SEED, Order, Refund, database, seed
from examples.orders_api.dev import DevIssuer
from policyd import Engine

from .conftest import EXAMPLES, Unlimited
from .http_app import UvicornThread
from .servers import ServeProcess

OFFICE, OFFSITE = "10.1.2.3", "203.0.113.9"


class Api:
    """The running app, its database, its token issuer, and a log of its SQL."""

    def __init__(self, url: str, sessions, engine, issuer: DevIssuer):
        self.http = httpx.Client(base_url=url, timeout=10)
        self.sessions, self.issuer, self.statements = sessions, issuer, []
        event.listen(engine, "before_cursor_execute",
                     lambda conn, cur, sql, *a: self.statements.append(sql.split()[0].upper()))

    def call(self, method: str, path: str, user: str | None = "alice", ip: str = OFFICE,
             token: str | None = None, **kw) -> httpx.Response:
        """As `user` (a seeded user's claims; `as_id` gives them another id, so that rate
        limits by principal.id start afresh)."""
        headers = {"x-forwarded-for": ip, **kw.pop("headers", {})}
        claims = {"sub": kw.pop("as_id")} if "as_id" in kw else {}
        if token or user:
            headers["authorization"] = f"Bearer {token or self.issuer.token(user, **claims)}"
        self.statements.clear()
        return self.http.request(method, path, headers=headers, **kw)

    def rows(self) -> dict:
        with self.sessions() as s:
            orders = {o.id: {c.name: getattr(o, c.name) for c in Order.__table__.columns}
                      for o in s.scalars(select(Order))}
            return {"orders": orders, "refunds": len(s.scalars(select(Refund)).all())}

    def reset(self) -> None:
        with self.sessions.begin() as s:
            s.query(Refund).delete()
            s.query(Order).delete()
        seed(self.sessions, SEED + extra_orders())


def extra_orders() -> list[Order]:
    rnd = random.Random(7)
    return [Order(id=f"x{i:03}", owner=rnd.choice(["alice", "bob", "carol", "erin", "zed"]),
                  tenant=rnd.choice(["t1", "t2"]), status=rnd.choice(["new", "paid"]),
                  total=rnd.randrange(1, 900), card_last4=f"{rnd.randrange(10000):04}",
                  internal_notes=f"note {i}", shared_with=[]) for i in range(40)]


@pytest.fixture(scope="module", params=["in_process", "remote"])
def api(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    issuer = DevIssuer(tmp / "keys")
    url = f"sqlite:///{tmp}/orders.db"
    server = None
    if request.param == "remote":
        server = ServeProcess(EXAMPLES / "orders", tmp=tmp).wait_serving()
    settings = Settings(jwks=str(issuer.jwks), database_url=url,
                        policyd=server.target if server else None)
    app = create_app(settings)
    try:
        with UvicornThread(app) as running:
            yield Api(running.url, database(url)[1], app.state.db, issuer)
    finally:
        if server is not None:
            server.terminate()


@pytest.fixture
def fresh(api):
    api.reset()
    return api


WRITES = {"INSERT", "UPDATE", "DELETE"}


def refused(api: Api, r: httpx.Response, status: int, code: str, before: dict,
            reads: int = 0) -> None:
    """The exact status and body, no data in it, no write, and at most `reads` SELECTs."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code
    assert set(body) <= {"error", "decision_id", "detail"}
    assert not WRITES & set(api.statements), api.statements
    assert len(api.statements) <= reads, api.statements
    assert api.rows() == before


# ---- API1 broken object level authorization ------------------------------------------

def test_another_tenants_order_by_id_is_404_as_if_it_did_not_exist(fresh):
    """Issue 28, item 8: a 403 told another tenant the order exists."""
    before = fresh.rows()
    missing = fresh.call("GET", "/orders/nope", user="alice")
    for method, path in (("GET", "/orders/o3"), ("DELETE", "/orders/o3"),
                         ("POST", "/orders/o3/refund"), ("PATCH", "/orders/o3")):
        kw = {"json": {"status": "paid"}} if method == "PATCH" else {}
        r = fresh.call(method, path, user="alice", **kw)  # o3 belongs to tenant t2
        refused(fresh, r, 404, "not_found", before, reads=1)
        assert r.json() == missing.json() == {"error": "not_found"}  # indistinguishable
    assert fresh.call("GET", "/orders/o3", user="erin").json()["id"] == "o3"
    # one who may see the order but not do this to it is still told 403
    refused(fresh, fresh.call("POST", "/orders/o1/refund", user="alice"), 403, "forbidden",
            before, reads=1)


def test_a_list_holds_exactly_the_orders_check_allows(fresh):
    engine = Engine.from_path(EXAMPLES / "orders", rate_store=Unlimited())  # limits aside
    rows = fresh.rows()["orders"]
    for user in ("alice", "bob", "erin"):
        got = fresh.call("GET", "/orders?limit=200", user=user)
        assert got.status_code == 200
        listed = {o["id"] for o in got.json()["orders"]}
        claims = {"roles": [], "tenant": "t1", "mfa": False, **_claims(user)}
        allowed = set()
        for oid, row in rows.items():
            attrs = {k: v for k, v in row.items() if k != "id"}
            d = engine.check({"principal": {"type": "User", "id": user, "attrs": claims},
                              "action": "list", "resource": {"type": "Order", "id": oid,
                                                             "attrs": attrs},
                              "context": {"ip": OFFICE, "time": "2026-12-01T00:00:00Z"}})
            if d.allowed:
                allowed.add(oid)
        assert listed == allowed, user
    before = fresh.rows()  # no role lists anything: refused as a whole, before any query
    refused(fresh, fresh.call("GET", "/orders", user="zed"), 403, "forbidden", before)


def test_pages_stay_inside_the_plan(fresh):
    seen, after = [], ""
    while True:
        page = fresh.call("GET", f"/orders?limit=7&after={after}", user="erin").json()
        seen += [o["id"] for o in page["orders"]]
        if not page["next"]:
            break
        after = page["next"]
    rows = fresh.rows()["orders"]
    assert seen and all(rows[i]["tenant"] == "t2" for i in seen)
    assert len(seen) == sum(1 for r in rows.values() if r["tenant"] == "t2")


# ---- API5 broken function level authorization ----------------------------------------

def test_a_viewer_cannot_refund(fresh):
    before = fresh.rows()
    refused(fresh, fresh.call("POST", "/orders/o1/refund", user="alice"), 403, "forbidden",
            before, reads=1)


def test_a_viewer_cannot_create_or_delete(fresh):
    before = fresh.rows()
    refused(fresh, fresh.call("POST", "/orders", user="alice",
                              json={"total": 5, "card_last4": "1234"}), 403, "forbidden",
            before)
    refused(fresh, fresh.call("DELETE", "/orders/o1", user="alice"), 403, "forbidden",
            before, reads=1)
    assert fresh.call("DELETE", "/orders/o2", user="bob").status_code == 204


def test_a_forged_gateway_header_decides_nothing(fresh):
    before = fresh.rows()
    forged = {"x-policyd-decision": "allowed", "x-policyd-principal-type": "User",
              "x-policyd-principal-id": "bob", "x-policyd-visible-fields": "internal_notes"}
    refused(fresh, fresh.call("POST", "/orders/o1/refund", user="alice", headers=forged),
            403, "forbidden", before, reads=1)
    shown = fresh.call("GET", "/orders/o2", user="alice", headers=forged).json()
    assert "internal_notes" not in shown


# ---- API3 excessive data exposure -----------------------------------------------------

def test_a_non_owner_never_sees_the_card(fresh):
    other = fresh.call("GET", "/orders/o2", user="alice").json()  # bob's order
    assert other == {"id": "o2", "status": "paid", "total": 120.0}
    own = fresh.call("GET", "/orders/o1", user="alice").json()
    assert own["card_last4"] == "4242" and "internal_notes" not in own
    listed = {o["id"]: o for o in fresh.call("GET", "/orders", user="alice").json()["orders"]}
    assert "card_last4" in listed["o1"] and "card_last4" not in listed["o2"]
    assert all("internal_notes" not in o for o in listed.values())


# ---- API6 mass assignment -------------------------------------------------------------

@pytest.mark.parametrize("body", [{"total": 0}, {"owner": "alice"}, {"status": "shipped",
                                                                     "total": 1}])
def test_a_patch_setting_fields_the_caller_may_not_write_is_refused(fresh, body):
    before = fresh.rows()
    refused(fresh, fresh.call("PATCH", "/orders/o1", user="alice", json=body), 403,
            "forbidden", before, reads=1)


def test_even_an_admin_cannot_set_the_owner(fresh):
    before = fresh.rows()
    refused(fresh, fresh.call("PATCH", "/orders/o1", user="bob", json={"owner": "bob"}), 403,
            "forbidden", before, reads=1)
    r = fresh.call("PATCH", "/orders/o1", user="bob", json={"total": 1})
    assert r.status_code == 200 and r.json()["total"] == 1
    assert fresh.rows()["orders"]["o1"]["total"] == 1


# ---- API4 unrestricted resource consumption ------------------------------------------

def test_thirty_refunds_in_a_row_are_cut_at_five(fresh):
    answers = [fresh.call("POST", "/orders/o1/refund", user="carol", as_id="carol-30")
               for _ in range(30)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 25
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].json()["error"] == "rate_limited"
    assert fresh.rows()["refunds"] == 5


def test_a_refund_from_outside_the_office_is_refused(fresh):
    before = fresh.rows()
    refused(fresh, fresh.call("POST", "/orders/o2/refund", user="carol", ip=OFFSITE,
                              as_id="carol-offsite"), 403, "forbidden", before, reads=1)


# ---- API9 improper inventory ----------------------------------------------------------

@pytest.mark.parametrize("method,path", [("GET", "/orders/o1/notes"), ("PUT", "/orders/o1"),
                                         ("DELETE", "/orders"), ("GET", "/admin/orders"),
                                         ("GET", "/orders/o1/"), ("GET", "/orders/%2e%2e")])
def test_an_undeclared_route_or_method_is_not_found(fresh, method, path):
    before = fresh.rows()
    refused(fresh, fresh.call(method, path, user="bob"), 404, "not_found", before)


# ---- API2 broken authentication -------------------------------------------------------

def _forged(issuer: DevIssuer) -> str:
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode({"iss": issuer.issuer, "aud": issuer.audience, "sub": "bob",
                       "exp": 2**31, "roles": ["admin"], "tenant": "t1", "mfa": True},
                      other, algorithm="ES256", headers={"kid": "dev"})


def _alg_none(issuer: DevIssuer) -> str:
    return jwt.encode({"iss": issuer.issuer, "aud": issuer.audience, "sub": "bob",
                       "exp": 2**31, "roles": ["admin"]}, None, algorithm="none")


@pytest.mark.parametrize("token", ["forged", "expired", "none", "garbage", "missing"])
def test_bad_tokens_are_unauthenticated(fresh, token):
    before = fresh.rows()
    made = {"forged": lambda: _forged(fresh.issuer),
            "expired": lambda: fresh.issuer.token("bob", ttl=-3600),
            "none": lambda: _alg_none(fresh.issuer), "garbage": lambda: "not.a.jwt",
            "missing": lambda: None}[token]()
    r = fresh.call("GET", "/orders/o1", user=None, token=made)
    refused(fresh, r, 401, "unauthenticated" if token == "missing" else "invalid_token",
            before)
    assert r.headers["www-authenticate"].startswith("Bearer")


# ---- API8 unvalidated input -----------------------------------------------------------

@pytest.mark.parametrize("body", [{"total": "lots"}, {"status": 5}, {"status": "stolen"},
                                  {"internal_notes": ["x"]}])
def test_a_body_of_the_wrong_types_is_a_bad_request(fresh, body):
    before = fresh.rows()
    r = fresh.call("PATCH", "/orders/o1", user="bob", json=body)
    refused(fresh, r, 400, "bad_request", before, reads=1)
    assert r.json()["detail"].startswith("body.")


def test_a_body_that_is_not_json_is_a_bad_request(fresh):
    before = fresh.rows()
    r = fresh.call("PATCH", "/orders/o1", user="bob", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and fresh.rows() == before


def test_a_create_of_the_wrong_shape_is_a_bad_request(fresh):
    before = fresh.rows()
    r = fresh.call("POST", "/orders", user="bob", json={"total": -1, "card_last4": "12"})
    refused(fresh, r, 400, "bad_request", before)


def test_allowed_calls_work(fresh):
    made = fresh.call("POST", "/orders", user="bob", json={"total": 5, "card_last4": "1234"})
    assert made.status_code == 201
    assert fresh.rows()["orders"][made.json()["id"]]["owner"] == "bob"
    assert fresh.call("GET", "/orders/missing", user="bob").status_code == 404


def _claims(user: str) -> dict:
    from examples.orders_api.dev import USERS
    return USERS.get(user, {})


def test_claims_that_do_not_fit_the_principal_are_an_invalid_token(fresh):
    before = fresh.rows()
    r = fresh.call("GET", "/orders/o1", user=None, token=fresh.issuer.token("nobody"))
    refused(fresh, r, 401, "invalid_token", before, reads=1)
    r = fresh.call("GET", "/orders", user=None,
                   token=fresh.issuer.token("zed", roles="admin"))
    refused(fresh, r, 401, "invalid_token", before)


def test_a_percent_encoded_id_is_decoded_once(fresh):
    assert fresh.call("GET", "/orders/o%31", user="alice").json()["id"] == "o1"
    before = fresh.rows()  # `%252e` is `%2e` once decoded: an id, not `.`, and unknown
    r = fresh.call("GET", "/orders/%252e%252e", user="alice")
    refused(fresh, r, 404, "not_found", before, reads=1)


# ---- issue 28, item 8: the example could be bricked and crashed ---------------------------


def test_a_note_policyd_would_refuse_is_never_stored(fresh):
    before = fresh.rows()
    emoji = "\U0001f600" * 2000  # 2,000 characters, 8,000 bytes: over policyd's 4,096
    r = fresh.call("PATCH", "/orders/o1", user="bob", json={"internal_notes": emoji})
    refused(fresh, r, 400, "bad_request", before, reads=1)
    assert "4096 bytes" in r.json()["detail"]
    ok = "\U0001f600" * 1024  # exactly 4,096 bytes
    assert fresh.call("PATCH", "/orders/o1", user="bob",
                      json={"internal_notes": ok}).status_code == 200
    assert fresh.call("GET", "/orders/o1", user="alice").status_code == 200  # not bricked


def test_a_stored_row_policyd_refuses_is_500_without_detail(fresh):
    """A row written around the API (too long a note) refuses everyone, but tells no one
    the size of a field they may not see."""
    with fresh.sessions.begin() as s:
        s.get(Order, "o1").internal_notes = "\U0001f600" * 2000
    for user in ("alice", "bob"):
        r = fresh.call("GET", "/orders/o1", user=user)
        assert r.status_code == 500 and r.json() == {"error": "stored_object_invalid"}
        assert "internal_notes" not in r.text and "4096" not in r.text


@pytest.mark.parametrize("field", ["status", "total", "internal_notes"])
def test_a_null_is_refused_not_a_server_error(fresh, field):
    before = fresh.rows()
    r = fresh.call("PATCH", "/orders/o1", user="bob", json={field: None})
    refused(fresh, r, 400, "bad_request", before, reads=1)
    assert f"{field}: null is not a value" in r.json()["detail"]


def test_the_readme_commands_work_as_written(tmp_path):
    """examples/orders_api/README.md: the server, then `export ALICE=...` and the curls
    of its second block, run by bash (the port changed to a free one)."""
    import os
    import re
    import shutil
    import subprocess
    import sys
    import time

    from .conftest import ROOT
    from .servers import free_port

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the README's commands use it")
    text = (ROOT / "examples" / "orders_api" / "README.md").read_text(encoding="utf-8")
    block = re.findall(r"```sh\n(.*?)```", text, re.S)[1]
    assert "export ALICE=" in block
    port = str(free_port())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "examples.orders_api", "--port", port],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/orders", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < end and server.poll() is None, "no server"
                time.sleep(0.1)
        lines = [line.split("   #")[0] + ("; echo" if line.startswith("curl") else "")
                 for line in block.replace("localhost:8000", f"localhost:{port}").replace(
                     "python -m", f"{sys.executable} -m").splitlines()]  # a line an answer
        script = "set -e\n" + "\n".join(lines)
        out = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        listed, patched, other = out.stdout.splitlines()
        assert [o["id"] for o in __import__("json").loads(listed)["orders"]] == ["o1", "o2"]
        assert '"error":"forbidden"' in patched and '"error":"not_found"' in other
    finally:
        server.terminate()
        server.wait(10)
