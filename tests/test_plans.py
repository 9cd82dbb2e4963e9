"""Query plans in process: the contract of `Engine.plan` and `Plan`, and exactness on
random policies (every operator of the language) against `check`, row by row and
through SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd import Engine, compile_text
from policyd.engine.models import RequestError
from policyd.engine.residual import Expr
from policyd.plans import PlanUntranslatable, to_sql, to_sql_columns

from . import plan_tables as pt
from .conftest import EXAMPLES, NOW, Unlimited, user
from .strategies import WORDS, attrs, policies

OFFICE = {"ip": "10.1.2.3", "time": "2026-11-22T10:00:00Z"}


def _plan(engine, principal, action="read", rtype="Order", context=OFFICE, **resource):
    request = {"principal": principal, "action": action,
               "resource": {"type": rtype, **resource}}
    if context is not None:
        request["context"] = context
    return engine.plan(request)


@pytest.fixture(scope="module")
def orders():
    return Engine.from_path(EXAMPLES / "orders", clock=lambda: NOW, rate_store=Unlimited())


def test_a_viewer_reads_the_orders_of_their_tenant(orders):
    plan = _plan(orders, user())
    assert plan.kind == "conditional" and plan.reasons == ()
    assert plan.condition == {"op": "eq", "args": [{"attr": "tenant", "type": "string"},
                                                   {"value": "t1", "type": "string"}]}
    assert plan.visible_fields["status"] is True
    assert plan.visible_fields["card_last4"] == {
        "op": "eq", "args": [{"attr": "owner", "type": "string"},
                             {"value": "alice", "type": "string"}]}
    assert "internal_notes" not in plan.visible_fields
    assert plan.matches({"tenant": "t1"}) and not plan.matches({"tenant": "t2"})
    json.dumps(plan.to_dict())  # JSON-able as a whole
    assert plan.policy_version == orders.version


def test_known_attributes_fold_into_the_plan(orders):
    assert _plan(orders, user(), attrs={"tenant": "t1"}).kind == "always_allowed"
    denied = _plan(orders, user(), attrs={"tenant": "t2"})
    assert denied.kind == "always_denied"
    assert denied.reasons == ("orders.tenant_isolation",)
    assert denied.condition is None and denied.visible_fields == {}


def test_denied_for_every_resource_says_why(orders):
    assert _plan(orders, user(), "delete").reasons == ("orders.no_delete",)
    assert _plan(orders, user(), "refund").reasons == ("default_deny",)
    assert _plan(orders, user(), "export").reasons == ("unknown_action",)
    assert _plan(orders, user(), rtype="Invoice").reasons == ("unknown_resource",)


def test_deny_rules_appear_negated_and_allows_as_alternatives(orders):
    plan = _plan(orders, user("carol", roles=["support"], mfa=True), "refund")
    assert plan.kind == "conditional"
    ops = json.dumps(plan.condition)
    assert '"lt"' in ops and "refund_limit" not in ops  # the constant is folded in
    assert plan.matches({"tenant": "t1", "total": 20})
    assert not plan.matches({"tenant": "t1", "total": 20000})


def test_no_residual_holds_a_constant_subtree(orders):
    def constant(node):
        if not isinstance(node, Expr):
            return False
        return all(type(a).__name__ == "Value" for a in node.args) or \
            any(constant(a) for a in node.args)
    for who in (user(), user("bob", roles=["admin"]), user("c", roles=["support"], mfa=True)):
        for action in ("read", "update", "refund", "delete", "list"):
            plan = _plan(orders, who, action)
            assert plan.residual is None or not constant(plan.residual)


def test_plans_take_no_rate_tokens(orders):
    engine = Engine.from_path(EXAMPLES / "orders", clock=lambda: NOW)
    for _ in range(200):
        _plan(engine, user(), "read")
    request = {"principal": user(), "action": "read", "context": OFFICE,
               "resource": {"type": "Order", "id": "o1", "attrs": {
                   "owner": "alice", "tenant": "t1", "status": "paid", "total": 20,
                   "card_last4": "4242", "internal_notes": "", "shared_with": []}}}
    assert engine.check(request).allowed  # the burst of 20 is untouched


@pytest.mark.parametrize("request_, words", [
    ({"principal": user(), "action": "read", "resource": {"type": "Order"}, "dry_run": True},
     "`dry_run` is not part of a plan request"),
    ({"principal": user(), "action": "read", "resource": {"type": "Order",
                                                          "attrs": {"bogus": 1}}},
     "resource.attrs.bogus is not declared on resource Order"),
    ({"principal": user(), "action": "read", "resource": {"type": "Order",
                                                          "attrs": {"total": "x"}}},
     "resource.attrs.total: expected a number"),
    ({"principal": user(), "action": "read", "resource": {"type": "Order", "id": ""}},
     "resource.id, when given, must be a non-empty string"),
    ({"principal": {"type": "Robot", "id": "r"}, "action": "read",
      "resource": {"type": "Order"}}, "unknown principal type 'Robot'"),
    ({"principal": user(tenant=3), "action": "read", "resource": {"type": "Order"}},
     "principal.attrs.tenant: expected a string"),
    ([], "a plan request must be an object"),
])
def test_a_bad_plan_request_is_refused_by_name(orders, request_, words):
    if isinstance(request_, dict):
        request_ = {"context": OFFICE, **request_}
    with pytest.raises(RequestError) as err:
        orders.plan(request_)
    assert words in str(err.value)


def test_stored_attributes_come_from_entity_data():
    engine = Engine.from_path(EXAMPLES / "projects")
    alice = {"type": "User", "id": "alice"}  # admin in w1, stored
    plan = _plan(engine, alice, "read", "Issue", context=None)
    assert plan.matches({"project": {"workspace": "w1", "private": True, "members": []}})
    assert not plan.matches({"project": {"workspace": "w9", "private": False,
                                         "members": []}})
    ghost = _plan(engine, {"type": "User", "id": "ghost"}, "read", "Issue", context=None)
    assert ghost.kind == "always_denied" and ghost.reasons[0].startswith("missing_data:")


def test_matches_needs_the_attributes_the_residual_reads(orders):
    plan = _plan(orders, user(), "update")
    with pytest.raises(RequestError, match="owner"):
        plan.matches({"tenant": "t1"})


def test_plans_are_logged_with_their_kind():
    records = []
    engine = Engine.from_path(EXAMPLES / "orders", decision_sink=records.append)
    plan, decision_id = engine.decide_plan({"principal": user(), "action": "read",
                                            "resource": {"type": "Order"},
                                            "context": OFFICE}, request_id="r-1")
    (record,) = records
    assert record["kind"] == "conditional" and "allowed" not in record
    assert record["decision_id"] == decision_id and record["request_id"] == "r-1"
    assert record["resource"] == {"type": "Order", "id": None}


# ---- random policies: every operator, exactly -------------------------------------

DOC_ROWS = 150


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=policies(), data=st.data())
def test_random_policies_plan_exactly(text, data):
    ps = compile_text(text)
    engine = Engine(ps, clock=lambda: NOW, rate_store=Unlimited())
    schema = ps.schema
    res = schema.resources["Doc"]
    roles = sorted(schema.roles)
    rows = pt.Rows(data.draw(st.integers(0, 10_000)), [w for w in WORDS if w] +
                   ["alice", "a", "b", "ay", "ALICE"], roles)
    table = [(f"d{i}", rows.attrs(res, {})) for i in range(DOC_ROWS)]
    ptype = data.draw(st.sampled_from(sorted(schema.principals)))
    principal = {"type": ptype, "id": data.draw(st.sampled_from(["alice", "bob", "d3"])),
                 "attrs": data.draw(attrs(schema.principals[ptype], roles))}
    context = data.draw(attrs(schema.context, roles))
    action = data.draw(st.sampled_from(list(res.actions)))
    known = {}
    if data.draw(st.booleans()):  # some attributes known up front
        some = data.draw(st.sampled_from(table))[1]
        known = {k: v for k, v in some.items() if data.draw(st.booleans())}
    plan = engine.plan({"principal": principal, "action": action, "context": context,
                        "resource": {"type": "Doc", "attrs": known}})
    expected = {}
    for rid, a in table:
        full = {**a, **known}
        d = engine.check({"principal": principal, "action": action, "context": context,
                          "resource": {"type": "Doc", "id": rid, "attrs": full}})
        if d.reasons == ["error"]:
            return  # arithmetic beyond the finite numbers: not what this test is about
        assert plan.matches(full, id=rid) == d.allowed, (rid, full, plan.to_dict())
        if d.allowed:
            expected[rid] = d.visible_fields
            assert plan.visible_for(full, id=rid) == d.visible_fields
    db = sqlite3.connect(":memory:")
    db.execute(pt.ddl("doc", res, {}, "sqlite"))
    db.executemany(pt.insert("doc", res, {}, "sqlite"),
                   [pt.row_params(rid, {**a, **known}, res, {}, "sqlite") for rid, a in table])
    columns = pt.columns_map(res, {})
    try:
        where, params = to_sql(plan, columns, "sqlite")
        to_sql_columns(plan, columns, "sqlite")
    except PlanUntranslatable as exc:
        assert "lower" in str(exc) or "ip" in str(exc), exc
        return
    got = {r[0] for r in db.execute(f"SELECT id FROM doc WHERE {where}", params)}
    assert got == set(expected), (where, params)


def test_sql_parameters_are_bound_in_the_order_the_text_reads_them():
    engine = Engine.from_path(Path(__file__).parent / "plans" / "maps.policy")
    schema = engine.policy_set.schema
    res = schema.resources["Doc"]
    plan = engine.plan({"principal": {"type": "User", "id": "t2",
                                      "attrs": {"roles": [], "teams": {}}},
                        "action": "edit", "resource": {"type": "Doc"}, "context": OFFICE})
    row = {"owner": "x", "acl": {"t2": ["editor"]}, "meta": {"status": "draft"},
           "scores": {}, "team": {"name": "t1", "level": 1}, "tags": [], "nums": [],
           "created": "2026-11-22T10:00:00Z", "title": "t"}
    assert plan.matches(row)
    db = sqlite3.connect(":memory:")
    db.execute(pt.ddl("doc", res, schema.records, "sqlite"))
    db.execute(pt.insert("doc", res, schema.records, "sqlite"),
               pt.row_params("d1", row, res, schema.records, "sqlite"))
    where, params = to_sql(plan, pt.columns_map(res, schema.records), "sqlite")
    assert db.execute(f"SELECT id FROM doc WHERE {where}", params).fetchall() == [("d1",)]


def _schema() -> dict:
    text = (Path(__file__).parent.parent / "docs" / "plans.md").read_text(encoding="utf-8")
    block = text.split("### JSON Schema", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)


def _valid(value, schema: dict, defs: dict) -> bool:
    """The JSON Schema subset docs/plans.md uses."""
    if "$ref" in schema:
        return _valid(value, defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "oneOf" in schema:
        return sum(_valid(value, s, defs) for s in schema["oneOf"]) == 1
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = {"object": dict, "array": list, "string": str, "null": type(None)}
    if "type" in schema and not isinstance(value, kinds[schema["type"]]):
        return False
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties", {})
        if any(k not in value for k in schema.get("required", ())):
            return False
        if schema.get("additionalProperties") is False and set(value) - set(props):
            return False
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else {})
            if not _valid(v, sub, defs):
                return False
    if isinstance(value, list) and "items" in schema:
        return all(_valid(v, schema["items"], defs) for v in value)
    return True


def test_plans_conform_to_the_documented_json_schema(orders):
    from policyd.engine.residual import OPERATORS
    schema = _schema()
    ops = schema["$defs"]["node"]["oneOf"][2]["properties"]["op"]["enum"]
    assert ops == list(OPERATORS)
    projects = Engine.from_path(EXAMPLES / "projects")
    plans = [_plan(orders, who, action) for who in (user(), user("c", roles=["support"],
                                                                 mfa=True))
             for action in ("read", "update", "refund", "delete", "export")]
    plans += [_plan(projects, {"type": "User", "id": u}, "read", "Issue", context=None)
              for u in ("alice", "bob", "ghost")]
    assert {p.kind for p in plans} == {"conditional", "always_denied"}
    for p in plans:
        assert _valid(p.to_dict(), schema, schema["$defs"]), p.to_dict()
    assert not _valid({"kind": "conditional", "condition": {"op": "exec", "args": []},
                       "visible_fields": {}, "reasons": [], "policy_version": "",
                       "resource_type": "", "action": ""}, schema, schema["$defs"])
