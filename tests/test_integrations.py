"""The Python integration layer on its own: Authorizer and AsyncAuthorizer in process and
against a real `policyd serve`, object mappings (records included), masking, write
guards, the gateway header, and what `import policyd` does not pull in."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import BaseModel

from policyd import AsyncAuthorizer, Authorizer, Engine
from policyd.client import PolicydUnavailable
from policyd.integrations import (
    BadRequest,
    Forbidden,
    RateLimited,
    Unavailable,
    guard_writes,
    visible,
    written_fields,
)
from policyd.integrations.mapping import plain

from .conftest import EXAMPLES, ROOT, Unlimited
from .servers import ServeProcess, free_port

OFFICE = {"ip": "10.1.2.3", "time": "2026-11-22T10:00:00Z"}
ALICE = {"type": "User", "id": "alice", "attrs": {"roles": ["viewer"], "tenant": "t1",
                                                   "mfa": False}}


@dataclasses.dataclass
class OrderRow:
    id: str
    owner: str
    tenant: str
    status: str
    total: Decimal
    card_last4: str
    internal_notes: str
    shared_with: set


def row(**kw) -> OrderRow:
    base = dict(id="o1", owner="alice", tenant="t1", status="paid", total=Decimal("20"),
                card_last4="4242", internal_notes="n", shared_with={"carol"})
    return OrderRow(**{**base, **kw})


@pytest.fixture
def local() -> Authorizer:
    authz = Authorizer(Engine.from_path(EXAMPLES / "orders", rate_store=Unlimited()))
    authz.register(OrderRow, "Order")
    return authz


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = ServeProcess(EXAMPLES / "orders", tmp=tmp_path_factory.mktemp("serve"))
    yield server.wait_serving()
    server.terminate()


def test_a_mapped_object_becomes_the_request_a_caller_would_write(local):
    req = local.request(ALICE, "read", row(), context=OFFICE)
    assert req["resource"] == {"type": "Order", "id": "o1", "attrs": {
        "owner": "alice", "tenant": "t1", "status": "paid", "total": 20,
        "card_last4": "4242", "internal_notes": "n", "shared_with": ["carol"]}}
    assert local.check(req).allowed
    assert local.authorize(ALICE, "read", row(), context=OFFICE).visible_fields == \
        ["id", "status", "total", "card_last4"]


def test_refusals_are_raised_never_returned(local):
    with pytest.raises(Forbidden) as denied:
        local.authorize(ALICE, "refund", row(), context=OFFICE)
    assert denied.value.status == 403 and denied.value.reasons == ("default_deny",)
    with pytest.raises(BadRequest, match="context"):
        local.authorize(ALICE, "read", row(), context={"ip": "not-an-ip"})
    with pytest.raises(TypeError, match="register it first"):
        local.request(ALICE, "read", object())


def test_a_mapping_must_name_a_declared_type_and_fit_it(local):
    with pytest.raises(ValueError, match="does not declare"):
        local.register(OrderRow, "Invoice")
    with pytest.raises(BadRequest, match="resource.attrs.owner"):
        local.authorize(ALICE, "read", row(owner=None), context=OFFICE)  # required: absent


def test_a_rate_limited_decision_is_a_429_with_its_wait():
    authz = Authorizer.local(EXAMPLES / "orders")
    authz.register(OrderRow, "Order")
    support = {"type": "User", "id": "s", "attrs": {"roles": ["support"], "tenant": "t1",
                                                    "mfa": True}}
    for _ in range(5):
        authz.authorize(support, "refund", row(), context=OFFICE)
    with pytest.raises(RateLimited) as limited:
        authz.authorize(support, "refund", row(), context=OFFICE)
    assert limited.value.status == 429 and float(limited.value.headers["retry-after"]) >= 1


def test_records_are_walked_by_the_declared_schema():
    @dataclasses.dataclass
    class Project:
        workspace: str
        private: bool
        members: frozenset
        archived_at: datetime | None = None
        secret: str = "never sent"

    class Issue:
        def __init__(self):
            self.id, self.reporter, self.reporter_email = 7, "u1", "u1@x.test"
            self.priority, self.title, self.assignee = 2, "t", None
            self.project = Project("w1", True, frozenset({"u2", "u1"}),
                                   datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))

    authz = Authorizer.local(EXAMPLES / "projects")
    authz.register(Issue, "Issue")
    res = authz.entity(Issue())
    assert res["id"] == "7"
    assert res["attrs"]["project"] == {"workspace": "w1", "private": True,
                                       "members": ["u1", "u2"],
                                       "archived_at": "2026-01-02T03:04:05Z"}
    assert "assignee" not in res["attrs"]  # None: an optional attribute left out


def test_plain_values():
    class Status(BaseModel):
        code: int

    assert plain(Decimal("2.5")) == 2.5 and plain(Decimal("3")) == 3
    assert plain(Status(code=1)) == {"code": 1}
    assert plain(datetime(2026, 1, 1)) == "2026-01-01T00:00:00Z"
    with pytest.raises(TypeError, match="cannot pass a object"):
        plain(object())


def test_visible_masks_every_kind_of_object():
    class Model(BaseModel):
        id: str
        total: int
        card_last4: str

    fields = ["id", "total"]
    for obj in (row(), Model(id="o1", total=20, card_last4="4242"),
                {"id": "o1", "total": 20, "card_last4": "4242", "debug": 1}):
        shown = visible(fields, obj)
        assert list(shown) == ["id", "total"], obj

    class Plain:
        id, total, card_last4 = "o1", 20, "4242"
    assert visible(fields, Plain()) == {"id": "o1", "total": 20}
    assert visible([], row()) == {}


def test_guard_writes_refuses_fields_beyond_the_decision():
    class Change(BaseModel):
        status: str | None = None
        total: int | None = None

    assert guard_writes(["status"], Change(status="paid")) == ["status"]
    with pytest.raises(Forbidden, match="total") as refused:
        guard_writes(["status"], Change(status="paid", total=1))
    assert refused.value.reasons == ("not_writable:total",)
    assert written_fields({"a": 1, "b": {"c": 2}}) == ["a", "b"]  # records as wholes
    with pytest.raises(BadRequest):
        written_fields([1, 2])


def test_the_remote_authorizer_answers_as_the_local_one(served, local):
    remote = Authorizer.remote(served.target, policy=EXAMPLES / "orders")
    remote.register(OrderRow, "Order")
    try:
        for action in ("read", "update", "refund", "delete"):
            req = local.request(ALICE, action, row(), context=OFFICE)
            a, b = local.check(req), remote.check(req)
            assert (a.allowed, a.reasons, a.visible_fields) == \
                (b.allowed, b.reasons, b.visible_fields), action
        assert remote.routes.match("GET", "/orders/o1").action == "read"
        plan = remote.plan_for(ALICE, "list", OrderRow, context=OFFICE)
        assert plan.matches({"tenant": "t1", "owner": "x"}) is True
        assert [d.allowed for d in remote.check_batch(
            ALICE, [{"resource": row(), "actions": ["read", "delete"]}], OFFICE)] == \
            [True, False]
    finally:
        remote.close()


def test_the_async_authorizer_in_process_and_remote(served):
    async def run():
        results = []
        for authz in (AsyncAuthorizer.local(EXAMPLES / "orders"),
                      AsyncAuthorizer.remote(served.target, policy=EXAMPLES / "orders")):
            authz.register(OrderRow, "Order")
            d = await authz.authorize(ALICE, "read", row(), context=OFFICE)
            with pytest.raises(Forbidden):
                await authz.authorize(ALICE, "delete", row(), context=OFFICE)
            plan = await authz.plan_for(ALICE, "list", "Order", context=OFFICE)
            batch = await authz.check_batch(ALICE, [{"resource": row(), "actions": ["read"]}],
                                            OFFICE)
            results.append((d.visible_fields, plan.kind, batch[0].allowed))
            await authz.close()
        return results

    local, remote = asyncio.run(run())
    assert local == remote == (["id", "status", "total", "card_last4"], "conditional", True)


def test_an_unreachable_policyd_refuses(local):
    down = f"127.0.0.1:{free_port()}"
    remote = Authorizer.remote(down, policy=EXAMPLES / "orders", timeout=0.3)
    remote.register(OrderRow, "Order")
    with pytest.raises(PolicydUnavailable):
        remote.check(local.request(ALICE, "read", row(), context=OFFICE))
    with pytest.raises(Unavailable) as refused:
        remote.authorize(ALICE, "read", row(), context=OFFICE)
    assert refused.value.status == 503

    async def run():
        authz = AsyncAuthorizer.remote(down, timeout=0.3)
        try:
            await authz.authorize(ALICE, "read", {"type": "Order", "id": "o1"})
        finally:
            await authz.close()
    with pytest.raises(Unavailable):
        asyncio.run(run())


def test_importing_policyd_imports_no_framework_driver_or_grpc():
    code = ("import sys, policyd, policyd.integrations; "
            "print(sorted(m for m in ('fastapi', 'starlette', 'django', 'rest_framework', "
            "'sqlalchemy', 'psycopg', 'grpc', 'jwt') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_fastapi_trusts_a_gateway_only_when_configured(local):
    import httpx

    from .fastapi_app import guarded_app
    from .http_app import UvicornThread

    def who(request):  # the caller-supplied principal function
        return {**ALICE} if request.headers.get("x-user") == "alice" else None

    def load(order_id):
        return row(id=order_id, owner="bob")

    gateway = {"x-user": "alice", "x-policyd-decision": "allowed",
               "x-policyd-principal-type": "User", "x-policyd-principal-id": "gw-user",
               "x-policyd-visible-fields": "id,internal_notes"}
    office = {"x-forwarded-for": "10.1.2.3"}
    with UvicornThread(guarded_app(local, who, load, OrderRow, trust=False)) as plain, \
            UvicornThread(guarded_app(local, who, load, OrderRow, trust=True)) as trusting:
        get = httpx.get
        assert get(plain.url + "/orders/o9", headers={"x-user": "alice", **office}
                   ).json() == {"id": "o9", "status": "paid", "total": 20}
        assert get(plain.url + "/orders/o9", headers=office).status_code == 401
        assert get(plain.url + "/orders/o9", headers={**gateway, **office}).json() == \
            {"id": "o9", "status": "paid", "total": 20}  # the header changed nothing
        assert get(trusting.url + "/orders/o9", headers=gateway).json() == \
            {"id": "o9", "internal_notes": "n"}  # configured: the gateway's answer
        r = httpx.post(plain.url + "/anything/o9", headers={"x-user": "alice", **office})
        assert r.status_code == 403  # explicit action: refund, which a viewer may not


def test_rows_of_a_plan_are_masked_row_by_row(local):
    from policyd.integrations import Access
    from policyd.integrations.gate import Target

    plan = local.plan_for(ALICE, "list", OrderRow, context=OFFICE)
    access = Access(ALICE, Target("Order", "list", None, {}, "GET /orders"), plan=plan,
                    authorizer=local)
    mine, theirs, other_tenant = row(), row(id="o2", owner="bob"), row(id="o3", tenant="t2")
    assert access.visible(mine) == {"id": "o1", "status": "paid", "total": Decimal("20"),
                                    "card_last4": "4242"}
    assert access.visible(theirs) == {"id": "o2", "status": "paid", "total": Decimal("20")}
    assert access.visible(other_tenant) == {}  # not in the plan: nothing, even if passed
    as_dict = dataclasses.asdict(theirs)
    assert access.visible(as_dict) == {"id": "o2", "status": "paid", "total": Decimal("20")}
    assert access.visible({**as_dict, "tenant": "t9"}) == {}


def test_sqlalchemy_plans_with_the_same_shape_keep_their_own_values(tmp_path):
    """Native plan conditions are cached by SQLAlchemy as compiled statements: two plans
    of one shape must still select by their own values."""
    from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

    from policyd.integrations.sqlalchemy import authorized_query

    engine = create_engine(f"sqlite:///{tmp_path}/o.db")
    t = Table("orders", MetaData(), Column("id", String, primary_key=True),
              Column("tenant", String), Column("owner", String))
    t.metadata.create_all(engine)
    with engine.begin() as c:
        c.execute(insert(t), [{"id": f"o{i}", "tenant": f"t{i % 3}", "owner": "x"}
                              for i in range(9)])
    authz = Authorizer.local(EXAMPLES / "orders")
    seen = {}
    with engine.connect() as c:
        for tenant in ("t0", "t1", "t2", "t0"):
            who = {**ALICE, "attrs": {**ALICE["attrs"], "tenant": tenant}}
            plan = authz.plan_for(who, "list", "Order", context=OFFICE)
            q = authorized_query(select(t.c.id, t.c.tenant), plan,
                                 {"id": t.c.id, "tenant": t.c.tenant, "owner": t.c.owner})
            seen.setdefault(tenant, []).append({r.tenant for r in c.execute(q)})
    assert seen == {"t0": [{"t0"}, {"t0"}], "t1": [{"t1"}], "t2": [{"t2"}]}
