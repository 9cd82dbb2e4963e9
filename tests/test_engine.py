"""Decision semantics (LANGUAGE.md "Decisions", steps 2-7 and 9) on the orders example
and on small focused policies."""

from __future__ import annotations

import logging

import pytest

from policyd import Decision, Engine, RequestError, compile_text
from policyd.engine.models import FrozenList

from .conftest import NOW, OFFICE, order, req, user

BOB_ADMIN = user("bob", roles=["admin"], mfa=True)


def test_owner_reads_and_updates_their_own_orders(orders_engine):
    alice, o1 = user(), order()
    for action in ("read", "update"):
        assert orders_engine.check(req(alice, action, o1)).allowed
    assert orders_engine.check(req(alice, "delete", o1)).reasons == ["orders.no_delete"]
    refund = orders_engine.check(req(alice, "refund", o1))
    assert (refund.allowed, refund.reasons) == (False, ["default_deny"])
    assert orders_engine.check(req(alice, "read", o1)).visible_fields == \
        ["id", "status", "total", "card_last4"]
    wrote = orders_engine.check(req(alice, "update", o1, write_fields=["total"]))
    assert (wrote.allowed, wrote.reasons) == (False, ["not_writable:total"])


def test_admins_are_still_fenced_by_tenant(orders_engine):
    d = orders_engine.check(req(BOB_ADMIN, "read", order(tenant="t2")))
    assert (d.allowed, d.reasons) == (False, ["orders.tenant_isolation"])


def test_deny_names_every_deny_that_held(orders_engine):
    d = orders_engine.check(req(user(), "delete", order(tenant="t2")))
    assert d.reasons == ["orders.tenant_isolation", "orders.no_delete"]


def test_inventory_denies_undeclared_types_and_actions(orders_engine):
    assert orders_engine.check(req(user(), "export", order())).reasons == ["unknown_action"]
    shadow = {"type": "Invoice", "id": "i1", "attrs": {"anything": 1}}
    d = orders_engine.check(req(user(), "read", shadow))
    assert (d.allowed, d.reasons) == (False, ["unknown_resource"])


def test_admin_sees_every_field_and_id_always_first(orders_engine):
    d = orders_engine.check(req(BOB_ADMIN, "read", order(owner="carol")))
    assert d.allowed and d.visible_fields == ["id", "owner", "tenant", "status", "total",
                                              "card_last4", "internal_notes", "shared_with"]


def test_writes_need_every_field_granted(orders_engine):
    support = user("sue", roles=["support"], mfa=True)
    ok = orders_engine.check(req(support, "refund", order(), write_fields=["status"]))
    assert ok.allowed
    mixed = orders_engine.check(req(BOB_ADMIN, "update", order(),
                                    write_fields=["status", "id", "nope", "total", "status"]))
    assert mixed.reasons == ["unknown_field:nope", "not_writable:id"]
    assert orders_engine.check(req(BOB_ADMIN, "update", order(),
                                   write_fields=["status", "total", "internal_notes"])).allowed


def test_explain_lists_every_rule_that_held(orders_engine):
    alice = user()
    plain = orders_engine.check(req(alice, "read", order()))
    full = orders_engine.check(req(alice, "read", order()), explain=True)
    assert plain.reasons == ["orders#2"]
    assert full.reasons == ["orders#2", "orders.owner_access", "orders#7", "orders#8"]
    assert full.visible_fields == plain.visible_fields


def test_numbers_may_be_int_or_float(orders_engine):
    support = user("sue", roles=["support"], mfa=True)
    assert orders_engine.check(req(support, "refund", order(total=499.5))).allowed
    assert not orders_engine.check(req(support, "refund", order(total=500.0))).allowed
    assert not orders_engine.check(req(support, "refund", order(total=500))).allowed


def test_unknown_roles_are_ignored_and_reported(orders_engine):
    d = orders_engine.check(req(user(roles=["superuser", "viewer"]), "list", order(owner="x")))
    assert d.allowed and d.reasons == ["orders#2"]
    assert d.warnings == ["unknown_role:superuser"]
    only_unknown = orders_engine.check(req(user(roles=["root"]), "list", order(owner="x")))
    assert only_unknown.reasons == ["default_deny"]


def test_ipv4_mapped_ipv6_cannot_slip_past_a_network_fence(orders_engine):
    support = user("sue", roles=["support"], mfa=True)
    inside = orders_engine.check(req(support, "refund", order(), {"ip": "::ffff:10.1.2.3"}))
    outside = orders_engine.check(req(support, "refund", order(), {"ip": "::ffff:8.8.8.8"}))
    assert inside.allowed and outside.reasons == ["order_fraud.offsite_refund"]


def test_decisions_are_immutable_values(orders_engine):
    d = orders_engine.check(req(user(), "read", order()))
    assert isinstance(d, Decision) and isinstance(d.reasons, FrozenList)
    with pytest.raises(TypeError):
        d.reasons.append("x")
    with pytest.raises(AttributeError):
        d.allowed = False  # frozen dataclass
    again = orders_engine.check(req(user(), "read", order()))
    assert again == d and again.reasons == ["orders#2"]
    assert d.to_dict() == {"allowed": True, "reasons": ["orders#2"],
                           "visible_fields": ["id", "status", "total", "card_last4"],
                           "retry_after": 0.0, "policy_version": orders_engine.version}


def test_policy_version_is_a_digest_of_the_source(tmp_path):
    (tmp_path / "a.policy").write_text("resource R { x: string actions read }\n")
    first = Engine.from_path(tmp_path).version
    assert first.startswith("sha256:") and Engine.from_path(tmp_path).version == first
    (tmp_path / "a.policy").write_text("resource R { x: string actions read, list }\n")
    assert Engine.from_path(tmp_path).version != first


ROLES = """
principal U { roles: set<string> }
role a
role b extends a
role c extends b
role d
resource R { actions go }
policy p for R { allow go when principal is a  show id when true }
"""


@pytest.mark.parametrize("roles,allowed", [(["a"], True), (["c"], True), (["b", "d"], True),
                                           (["d"], False), ([], False)])
def test_role_inheritance_is_transitive(roles, allowed):
    engine = Engine(compile_text(ROLES))
    d = engine.check({"principal": {"type": "U", "id": "u", "attrs": {"roles": roles}},
                      "action": "go", "resource": {"type": "R", "id": "r"}})
    assert d.allowed is allowed


def test_context_time_is_supplied_from_the_clock():
    text = """
principal U { roles: set<string> }
context { time: time }
resource R { actions go }
policy p for R { allow go when hour(context.time) == 10 and weekday(context.time) == 7 }
"""
    engine = Engine(compile_text(text), clock=lambda: NOW)  # a Sunday, 10:00 UTC
    base = {"principal": {"type": "U", "id": "u", "attrs": {"roles": []}}, "action": "go",
            "resource": {"type": "R", "id": "r"}}
    assert engine.check(base).allowed
    assert engine.check({**base, "context": {"time": "2026-11-22T12:00:00+02:00"}}).allowed
    assert not engine.check({**base, "context": {"time": "2026-11-22T11:00:00+02:00"}}).allowed
    assert not engine.check({**base, "context": {"time": "2026-11-23T10:00:00Z"}}).allowed


def test_no_show_rule_means_every_field_visible():
    text = "principal U { n: number }\nresource R { a: string b: number actions go }\n" \
           "policy p for R { allow go when true }\n"
    engine = Engine(compile_text(text))
    d = engine.check({"principal": {"type": "U", "id": "u", "attrs": {"n": 1}}, "action": "go",
                      "resource": {"type": "R", "id": "r", "attrs": {"a": "x", "b": 2}}})
    assert d.visible_fields == ["id", "a", "b"]


def test_fail_closed_on_an_unexpected_failure(orders_engine, caplog):
    ps = orders_engine.policy_set
    engine = Engine(ps)

    def boom(*args):
        raise ZeroDivisionError("injected")

    engine.check(req(user(), "read", order()))  # memoised: the fast path would answer
    table = ps.namespace["A_0"]  # the fast path's (decider, limiter, memo) of Order's actions
    saved, saved_fast = ps.deciders["Order"]["read"], table["read"]
    ps.deciders["Order"]["read"], table["read"] = boom, (boom, *saved_fast[1:])
    try:
        with caplog.at_level(logging.ERROR, "policyd.engine"):
            first = engine.check(req(user(), "read", order()))
            engine.check(req(user(), "read", order()))
    finally:
        ps.deciders["Order"]["read"], table["read"] = saved, saved_fast
    assert (first.allowed, first.reasons) == (False, ["error"])
    assert len([r for r in caplog.records if "failed closed" in r.message]) == 1


def test_fail_closed_maps_generated_code_back_to_the_policy_line(caplog):
    """A condition's arithmetic is three-valued (an unknown allow is never an allow); a
    limit key's cannot be, so it fails the decision, logged at its policy line."""
    text = """
principal U { n: number }
resource R { big: number actions go, count }
policy p for R {
  allow go, count when principal.n * resource.big > 1
  limit count: 5 per 1m by principal.n * resource.big
}
"""
    engine = Engine(compile_text(text, "arith.policy"))
    huge = {"principal": {"type": "U", "id": "u", "attrs": {"n": 1e308}}, "action": "go",
            "resource": {"type": "R", "id": "r", "attrs": {"big": 1e308}}}
    d = engine.check(huge)
    assert d.reasons == ["error"] and not d.allowed  # its only allow was unknown
    with caplog.at_level(logging.ERROR, "policyd.engine"):
        d = engine.check({**huge, "action": "count"})
    assert d.reasons == ["error"] and not d.allowed
    assert "arith.policy:6" in caplog.text


def test_memoised_decisions_never_cross_resource_types():
    """Two types whose deciders return the same int (same mask, same rule index) must still
    get their own rule names and fields."""
    text = """
principal U { n: number }
resource A { a: string actions go }
resource B { b: string actions go }
policy pa for A { first_a: allow go when true  show a when true }
policy pb for B { first_b: allow go when true  show b when true }
"""
    engine = Engine(compile_text(text))
    p = {"type": "U", "id": "u", "attrs": {"n": 1}}
    a = engine.check({"principal": p, "action": "go", "resource": {"type": "A", "id": "1",
                                                                   "attrs": {"a": "x"}}})
    b = engine.check({"principal": p, "action": "go", "resource": {"type": "B", "id": "2",
                                                                   "attrs": {"b": "y"}}})
    assert (a.reasons, a.visible_fields) == (["pa.first_a"], ["id", "a"])
    assert (b.reasons, b.visible_fields) == (["pb.first_b"], ["id", "b"])


def test_check_batch_equals_check_on_each_pair(orders_engine):
    items = [{"resource": order("o1"), "actions": ["read", "delete", "export"]},
             {"resource": order("o2", tenant="t2"), "actions": ["read"]},
             {"resource": {"type": "Ghost", "id": "g"}, "actions": ["read"]},
             {"resource": order("o3"), "actions": ["update"], "write_fields": ["total"]}]
    got = orders_engine.check_batch(user(), items, OFFICE)
    want = [orders_engine.check(req(user(), a, it["resource"],
                                    write_fields=it.get("write_fields", [])))
            for it in items for a in it["actions"]]
    assert got == want and len(got) == 6


def test_check_batch_names_the_bad_item(orders_engine):
    items = [{"resource": order("o1"), "actions": ["read"]},
             {"resource": order("o2", total="lots"), "actions": ["read"]}]
    with pytest.raises(RequestError, match=r"items\[1\]: resource.attrs.total"):
        orders_engine.check_batch(user(), items, OFFICE)
    with pytest.raises(RequestError, match="principal.attrs.mfa"):
        orders_engine.check_batch(user(mfa="no"), items, OFFICE)


def test_every_deny_that_holds_is_a_reason_in_source_order():
    rules = "\n".join(f"  d{i}: deny read when principal.level > {i % 7}" for i in range(3000))
    ps = compile_text(f"""principal User {{ roles: set<string> level: number }}
resource Doc {{ owner: string  actions read }}
policy p for Doc {{
{rules}
  allow read when true
  show *
}}""")
    engine = Engine(ps)
    request = {"principal": {"type": "User", "id": "u", "attrs": {"roles": [], "level": 3}},
               "action": "read", "resource": {"type": "Doc", "id": "d", "attrs": {"owner": "x"}}}
    d = engine.check(request)
    assert d.reasons == [f"p.d{i}" for i in range(3000) if i % 7 < 3]
