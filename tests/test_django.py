"""The Django integration over real HTTP: a DRF orders API (tests/django_orders) under
uvicorn in a child process, guarded by PolicydMiddleware, PolicydPermission and
authorized_queryset, attacked as the FastAPI example is."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from examples.orders_api.dev import DevIssuer

from .conftest import ROOT
from .servers import free_port

pytest.importorskip("rest_framework")
OFFICE = "10.1.2.3"
ORDERS = [("o1", "alice", "t1", "paid", 20, "4242", "called twice", ["carol"]),
          ("o2", "bob", "t1", "paid", 120, "1881", "", []),
          ("o3", "erin", "t2", "new", 75, "0005", "VIP", [])]


class DjangoApi:
    def __init__(self, tmp):
        self.db, self.issuer = tmp / "orders.db", DevIssuer(tmp / "keys")
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ORDERS_DB": str(self.db),
               "ORDERS_JWKS": str(self.issuer.jwks),
               "DJANGO_SETTINGS_MODULE": "tests.django_orders.settings"}
        self.log = open(tmp / "django.log", "w")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.django_orders.asgi:application",
             "--host", "127.0.0.1", "--port", str(port), "--proxy-headers",
             "--forwarded-allow-ips", "127.0.0.1", "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        end = time.monotonic() + 30
        while True:
            try:
                if self.http.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError((tmp / "django.log").read_text())
            time.sleep(0.1)

    def reset(self) -> None:
        with sqlite3.connect(self.db) as c:
            c.execute("DELETE FROM orders")
            c.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          [(*o[:7], json.dumps(o[7])) for o in ORDERS])

    def rows(self):
        with sqlite3.connect(self.db) as c:
            return sorted(c.execute("SELECT * FROM orders"))

    def call(self, method, path, user="alice", token=None, ip=OFFICE, **kw):
        headers = {"x-forwarded-for": ip, **kw.pop("headers", {})}
        if token or user:
            claims = {"sub": kw.pop("as_id")} if "as_id" in kw else {}
            headers["authorization"] = f"Bearer {token or self.issuer.token(user, **claims)}"
        return self.http.request(method, path, headers=headers, **kw)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def django_api(tmp_path_factory):
    api = DjangoApi(tmp_path_factory.mktemp("django"))
    yield api
    api.stop()


@pytest.fixture
def api(django_api):
    django_api.reset()
    return django_api


def test_objects_are_decided_by_the_permission_class(api):
    other = api.call("GET", "/orders/o3")  # another tenant's: as if it did not exist
    assert other.status_code == 404 and other.json() == api.call("GET", "/orders/nope").json()
    assert api.call("POST", "/orders/o3/refund", user="alice").status_code == 404
    assert api.call("GET", "/orders/o2").json() == {"id": "o2", "status": "paid",
                                                    "total": 120.0}  # no card: not owner
    assert api.call("GET", "/orders/o1").json()["card_last4"] == "4242"
    assert api.call("GET", "/orders/nope").status_code == 404


def test_lists_are_filtered_by_the_plan_in_the_queryset(api):
    listed = api.call("GET", "/orders", user="erin").json()["orders"]
    assert listed == [{"id": "o3", "status": "new", "total": 75.0, "card_last4": "0005"}]
    assert {o["id"] for o in api.call("GET", "/orders", user="bob").json()["orders"]} == \
        {"o1", "o2"}
    assert api.call("GET", "/orders", user="zed").status_code == 403


def test_function_level_and_mass_assignment(api):
    before = api.rows()
    assert api.call("POST", "/orders/o1/refund", user="alice").status_code == 403
    assert api.call("PATCH", "/orders/o1", user="alice", json={"total": 0}).status_code == 403
    assert api.call("PATCH", "/orders/o1", user="bob", json={"owner": "bob"}).status_code == 403
    assert api.call("PATCH", "/orders/o1", user="bob", json={"total": "x"}).status_code == 400
    assert api.rows() == before
    r = api.call("PATCH", "/orders/o1", user="bob", json={"total": 3})
    assert r.status_code == 200 and r.json()["total"] == 3


def test_refunds_are_rate_limited(api):
    codes = [api.call("POST", "/orders/o1/refund", user="carol", as_id="carol-dj")
             for _ in range(8)]
    assert [c.status_code for c in codes] == [200] * 5 + [429] * 3
    assert int(codes[-1].headers["retry-after"]) >= 1


def test_undeclared_routes_and_bad_tokens(api):
    assert api.call("GET", "/orders/o1/notes", user="bob").status_code == 404
    assert api.call("PUT", "/orders/o1", user="bob").status_code == 404
    r = api.call("GET", "/orders/o1", user=None)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = api.call("GET", "/orders/o1", user=None, token=api.issuer.token("bob", ttl=-999))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


def test_a_view_that_never_decides_its_object_is_refused(api):
    r = api.call("DELETE", "/orders/o1", user="bob")  # the view forgot to ask
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


def test_a_forged_gateway_header_is_ignored(api):
    forged = {"x-policyd-decision": "allowed", "x-policyd-principal-type": "User",
              "x-policyd-principal-id": "bob"}
    assert api.call("POST", "/orders/o1/refund", user="alice",
                    headers=forged).status_code == 403
