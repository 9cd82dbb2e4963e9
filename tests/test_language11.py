"""Language 1.1: records, maps, scoped roles, stored attributes with entity data, routes.

Every form of the 1.1 section of the language description, as written there, and each
check positive and negative."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyd import Engine, PolicyError, RequestError, compile_path, compile_text
from policyd.cli import main
from policyd.server.reload import PolicyWatcher

from .conftest import EXAMPLES

# The forms as the language description writes them (records, maps, scoped roles,
# stored attributes, routes), put together into one set.
RECORDS = """
record Project {
  workspace: string
  private: bool
  members: set<string>
  archived_at?: time
}

resource Issue owned by reporter {
  reporter: string
  assignee?: string
  priority: number
  project: Project
  actions read, update, close
}
"""
USER = """
principal User {
  roles: set<string>
  workspace_roles: map<string, set<string>>   # workspace id -> roles there
  quotas?: map<string, number>
}
role guest
role member extends guest
role maintainer extends member
role admin extends maintainer
"""
SCOPED = """
policy issues for Issue {
  allow read when principal.workspace_roles[resource.project.workspace] is guest
  allow update when principal.workspace_roles[resource.project.workspace] is maintainer
  deny * when resource.project.private
             and not (resource.project.members contains principal.id)
             and not principal.workspace_roles[resource.project.workspace] is admin
}
"""
ROUTES = """
resource Order {
  tenant: string
  actions list, create, read, update, refund
}
routes for Order {
  GET    /orders                -> list
  POST   /orders                -> create
  GET    /orders/{id}           -> read
  PATCH  /orders/{id}           -> update
  POST   /orders/{id}/refund    -> refund
}
"""


def issue(workspace="w1", private=False, members=(), **more):
    project = {"workspace": workspace, "private": private, "members": list(members), **more}
    return {"type": "Issue", "id": "i1",
            "attrs": {"reporter": "carol", "priority": 1, "project": project}}


def user(uid="bob", roles=(), workspace_roles=None, **more):
    return {"type": "User", "id": uid,
            "attrs": {"roles": list(roles), "workspace_roles": workspace_roles or {}, **more}}


def codes(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        compile_text(text, "t.policy")
    return [d.code for d in info.value.diagnostics if d.is_error]


def message(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        compile_text(text, "t.policy")
    return info.value.render()


@pytest.fixture(scope="module")
def scoped() -> Engine:
    return Engine(compile_text(USER + RECORDS + SCOPED + "policy s for Issue { show * }"))


# ---- records -------------------------------------------------------------------------


def test_record_paths_read_through(scoped):
    r = {"principal": user(workspace_roles={"w1": ["maintainer"]}), "action": "update",
         "resource": issue()}
    assert scoped.check(r).reasons == ["issues#2"]
    r["resource"] = issue(private=True)
    assert scoped.check(r).reasons == ["issues#3"]
    r["resource"] = issue(private=True, members=["bob"])
    assert scoped.check(r).allowed


def test_optional_record_attributes_need_a_guard_at_every_level():
    base = USER + RECORDS + "policy p for Issue {\n  allow read when "
    assert codes(base + 'resource.project.archived_at < time("2026-01-01T00:00:00Z") }') \
        == ["E308"]
    assert "guard the read: `resource.project has archived_at and ...`" in message(
        base + 'resource.project.archived_at < time("2026-01-01T00:00:00Z") }')
    compile_text(base + 'resource.project has archived_at and resource.project.archived_at '
                 '< time("2026-01-01T00:00:00Z") }')
    compile_text(base + 'not (resource.project has archived_at) or resource.project.archived_at'
                 ' < time("2026-01-01T00:00:00Z") }')
    assert codes(base + 'resource.project.nope }') == ["E311"]
    assert codes(base + 'resource.priority.x == 1 }') == ["E307"]


def test_records_cannot_contain_themselves_and_may_nest():
    cyclic = "record A { b: B }\nrecord B { a?: A }\n" + USER
    assert "record contains itself: A -> B -> A" in message(cyclic)
    assert codes("record A { m: map<string, A> }\n" + USER) == ["E123"]
    assert codes("record string { a: bool }\n" + USER) == ["E122"]
    nested = compile_text("record Geo { country: string }\nrecord Org { geo: Geo  name: string }"
                          + USER + "resource D { org: Org  actions read }\n"
                          'policy p for D { allow read when resource.org.geo.country == "NL" }')
    r = {"principal": user(), "action": "read",
         "resource": {"type": "D", "id": "d", "attrs": {"org": {"name": "x",
                                                                  "geo": {"country": "NL"}}}}}
    assert Engine(nested).check(r).allowed


def test_request_errors_name_the_whole_path(scoped):
    r = {"principal": user(), "action": "read", "resource": issue(members=["a", 5])}
    with pytest.raises(RequestError, match=r"resource\.attrs\.project\.members\[1\]: expected a "
                                           r"string, found number 5"):
        scoped.check(r)
    r["resource"] = issue()
    del r["resource"]["attrs"]["project"]["private"]
    with pytest.raises(RequestError, match=r"resource\.attrs\.project\.private is required"):
        scoped.check(r)
    r["resource"] = issue(extra=1)
    with pytest.raises(RequestError, match=r"resource\.attrs\.project\.extra is not declared on "
                                           r"record Project"):
        scoped.check(r)
    r["resource"] = issue(archived_at="yesterday")
    with pytest.raises(RequestError, match=r"resource\.attrs\.project\.archived_at: expected a "
                                           "time"):
        scoped.check(r)


def test_show_and_write_name_top_level_attributes_only():
    assert codes(USER + RECORDS + "policy p for Issue { show project.private }") == ["E131"]
    ps = compile_text(USER + RECORDS + "policy p for Issue { allow read when true\n"
                      "show project }")
    assert "project" in ps.fields["Issue"]


# ---- maps ----------------------------------------------------------------------------


def test_map_values_other_than_sets_need_a_key_guard():
    base = USER + RECORDS + "policy p for Issue {\n  allow read when principal has quotas and "
    assert codes(base + 'principal.quotas["gold"] > 3 }') == ["E334"]
    assert 'guard the read: `"gold" in principal.quotas and ...`' in message(
        base + 'principal.quotas["gold"] > 3 }')
    engine = Engine(compile_text(base + '"gold" in principal.quotas and '
                                 'principal.quotas["gold"] > 3 }'))
    r = {"principal": user(quotas={"gold": 5}), "action": "read", "resource": issue()}
    assert engine.check(r).allowed
    r["principal"] = user(quotas={"silver": 9})
    assert engine.check(r).reasons == ["default_deny"]


def test_a_missing_key_of_a_set_valued_map_reads_as_empty(scoped):
    r = {"principal": user(workspace_roles={"w2": ["admin"]}), "action": "read",
         "resource": issue()}
    assert scoped.check(r).reasons == ["default_deny"]


def test_map_checks():
    base = USER + RECORDS + "policy p for Issue {\n  allow read when "
    assert codes(base + 'resource.priority["a"] == 1 }') == ["E332"]
    assert codes(base + 'principal.workspace_roles[resource.priority] is guest }') == ["E333"]
    assert codes(base + '5 in principal.workspace_roles }') == ["E333"]
    assert codes("principal U { m: map<number, string> }") == ["E103"]
    assert codes("principal U { m: map<string, map<string, bool>> }") == ["E103"]
    engine = Engine(compile_text(base + 'len(principal.workspace_roles) > 1 }'))
    r = {"principal": user(workspace_roles={"a": [], "b": []}), "action": "read",
         "resource": issue()}
    assert engine.check(r).allowed
    r["principal"] = user(workspace_roles={"a": ["x", 3]})
    with pytest.raises(RequestError, match=r"principal\.attrs\.workspace_roles\.a\[1\]: expected "
                                           "a string"):
        engine.check(r)


# ---- scoped roles ------------------------------------------------------------------------


def test_roles_inherit_through_scoped_role_sets(scoped):
    r = {"principal": user(workspace_roles={"w1": ["admin"]}), "action": "read",
         "resource": issue(private=True)}
    assert scoped.check(r).reasons == ["issues#1"]  # admin extends ... guest


def test_is_needs_a_set_of_role_names():
    base = USER + RECORDS + "policy p for Issue {\n  allow read when "
    assert codes(base + "resource.priority is guest }") == ["E328"]
    assert codes(base + "principal.workspace_roles is guest }") == ["E328"]
    assert codes(base + "principal.roles is nobody }") == ["E329"]
    compile_text(base + "principal.roles is guest }")


def test_unknown_roles_in_scoped_sets_are_warnings(scoped):
    r = {"principal": user(workspace_roles={"w1": ["guest", "gust"]}), "action": "read",
         "resource": issue()}
    d = scoped.check(r)
    assert d.allowed and d.warnings == ["unknown_role:gust"]


def test_comparing_roles_to_a_string_hints_at_is():
    assert "hint: to test a role, write `principal is admin`" in message(
        USER + RECORDS + 'policy p for Issue { allow read when principal.roles == "admin" }')


# ---- stored attributes and entity data ----------------------------------------------------

STORED = """
principal User {
  roles: set<string> stored
  workspace_roles: map<string, set<string>> stored
  email: string
}
role guest
role admin extends guest
resource Doc { tier?: string stored  actions read }
policy p for Doc {
  allow read when principal.workspace_roles["w1"] is guest
  deny read when resource has tier and resource.tier == "secret" and not principal is admin
}
"""


def stored_set(tmp_path: Path, entries: list, name="users.data.json") -> Path:
    (tmp_path / "set.policy").write_text(STORED)
    if name.endswith(".jsonl"):
        (tmp_path / name).write_text("".join(json.dumps(e) + "\n" for e in entries))
    else:  # one entry a line: entry k stands on line k + 2
        (tmp_path / name).write_text("[\n" + ",\n".join(map(json.dumps, entries)) + "\n]\n")
    return tmp_path


def doc_req(uid="bob", doc="d1", **attrs):
    return {"principal": {"type": "User", "id": uid, "attrs": {"email": "x@y", **attrs}},
            "action": "read", "resource": {"type": "Doc", "id": doc}}


BOB = {"type": "User", "id": "bob", "attrs": {"roles": [], "workspace_roles": {"w1": ["guest"]}}}


def test_stored_attributes_come_from_entity_data(tmp_path):
    secret = {"type": "Doc", "id": "d2", "attrs": {"tier": "secret"}}
    engine = Engine.from_path(stored_set(tmp_path, [BOB, secret]))
    assert engine.check(doc_req()).reasons == ["p#1"]
    assert engine.check(doc_req(doc="d2")).reasons == ["p#2"]
    assert engine.check(doc_req(uid="nobody")).reasons == ["missing_data:principal.roles"]
    with pytest.raises(RequestError, match=r"principal\.attrs\.roles is stored: it comes from "
                                           r"the policy set's entity data, never from the "
                                           "request"):
        engine.check(doc_req(roles=["admin"]))


def test_jsonl_data_and_data_outside_the_set(tmp_path):
    outside = tmp_path / "dir"
    outside.mkdir()
    (outside / "more.jsonl").write_text(json.dumps(BOB) + "\n")
    root = tmp_path / "set"
    root.mkdir()
    (root / "set.policy").write_text(STORED)
    with pytest.raises(PolicyError):
        compile_path(root, data=[tmp_path / "nope"])
    engine = Engine.from_path(root, data=[outside])
    assert engine.check(doc_req()).allowed
    assert engine.version != Engine.from_path(root).version  # the digest covers the data


@pytest.mark.parametrize(("entries", "code", "text"), [
    ([{"type": "User", "id": "a", "attrs": {"email": "x"}}], "E505",
     "attrs.email is not a stored attribute of principal User"),
    ([{"type": "User", "id": "a", "attrs": {"roles": [1]}}], "E505",
     "attrs.roles[0]: expected a string"),
    ([{"type": "Usr", "id": "a", "attrs": {}}], "E503", "unknown entity type `Usr`"),
    ([BOB, BOB], "E506", "principal User 'bob' is given twice"),
    ([{"type": "User", "attrs": {}}], "E502", "a non-empty string `id`"),
    ([{"type": "User", "id": "a", "attrs": {}, "x": 1}], "E502", "`x` is not part of an entry"),
])
def test_entity_data_problems_are_positioned_diagnostics(tmp_path, entries, code, text):
    with pytest.raises(PolicyError) as info:
        compile_path(stored_set(tmp_path, [BOB] + entries if code != "E506" else entries))
    d = info.value.diagnostics[0]
    assert (d.code, d.file.endswith("users.data.json")) == (code, True)
    assert text in d.message
    assert d.line == 3  # the second entry: each entry of a JSON list has its own line


def test_invalid_json_and_ambiguous_kinds(tmp_path):
    (tmp_path / "set.policy").write_text(STORED + "resource User { actions read }\n"
                                         "policy q for User { allow read when true }")
    (tmp_path / "x.data.jsonl").write_text(json.dumps(BOB) + "\n{not json\n")
    with pytest.raises(PolicyError) as info:
        compile_path(tmp_path)
    found = sorted((d.code, d.line) for d in info.value.diagnostics)
    assert found == [("E501", 2), ("E504", 1)]
    (tmp_path / "x.data.jsonl").write_text(json.dumps({**BOB, "kind": "principal"}) + "\n")
    assert Engine.from_path(tmp_path).check(doc_req()).allowed


def test_stored_is_for_principal_and_resource_attributes():
    assert codes("context { ip: ip stored }") == ["E124"]
    assert codes("record R { a: string stored }") == ["E124"]


def test_reload_picks_up_changed_data(tmp_path):
    root = stored_set(tmp_path, [BOB])
    engine = Engine.from_path(root)
    assert engine.check(doc_req()).allowed
    (root / "users.data.json").write_text(json.dumps([{**BOB, "attrs": {
        "roles": [], "workspace_roles": {}}}]))
    assert PolicyWatcher(root, engine).reload()
    assert engine.check(doc_req()).reasons == ["default_deny"]


def test_check_counts_data_files(tmp_path, capsys):
    assert main(["check", str(stored_set(tmp_path, [BOB]))]) == 0
    assert "2 files loaded (1 policy, 0 test, 1 data)" in capsys.readouterr().out


# ---- routes -------------------------------------------------------------------------------


def test_routes_map_requests_to_actions():
    ps = compile_text("principal U { roles: set<string> }" + ROUTES +
                      "policy p for Order { allow * when true }")
    m = ps.routes.match
    assert (m("GET", "/orders").action, m("GET", "/orders").id) == ("list", None)
    assert (m("POST", "/orders/o1/refund").action, m("POST", "/orders/o1/refund").id) == \
        ("refund", "o1")
    assert m("PATCH", "/orders/a%20b").id == "a b"
    for method, path in [("GET", "/orders/"), ("GET", "//orders"), ("GET", "/Orders"),
                         ("GET", "/orders/%2e%2e"), ("GET", "/orders/./o1"),
                         ("GET", "/orders/a%2Fb"), ("DELETE", "/orders/o1"), ("get", "/orders"),
                         ("GET", "/orders/o1/refund/x"), ("GET", "/orders/%zz")]:
        assert m(method, path) is None, (method, path)


def test_route_parameters_fill_attributes_and_literals_win():
    ps = compile_text("""
        principal U { roles: set<string> }
        resource Issue { workspace: string  actions read, export }
        routes for Issue {
          GET /workspaces/{workspace}/issues/{id} -> read
          GET /workspaces/{workspace}/issues/export -> export
        }
        policy p for Issue { allow * when true }""")
    hit = ps.routes.match("GET", "/workspaces/w1/issues/i9")
    assert (hit.resource, hit.action, hit.id, hit.attrs) == ("Issue", "read", "i9",
                                                              {"workspace": "w1"})
    assert ps.routes.match("GET", "/workspaces/w1/issues/export").action == "export"


@pytest.mark.parametrize(("routes", "code"), [
    ("FETCH /orders -> list", "E126"),
    ("GET /orders -> lisst", "E118"),
    ("GET /orders/x{id} -> read", "E127"),
    ("GET /orders//x -> read", "E127"),
    ("GET /orders/ -> read", "E127"),
    ("GET /orders/../x -> read", "E127"),
    ("GET /orders/{owner} -> read", "E128"),
    ("GET /t/{id}/o/{id} -> read", "E129"),
    ("GET /orders/{id} -> read\n GET /orders/{other_id} -> update", "E128"),
    ("GET /orders/{id} -> read\n GET /orders/{id} -> update", "E130"),
])
def test_route_checks(routes, code):
    text = ("principal U { roles: set<string> }\nresource Order { tenant: string  note?: string "
            "actions list, read, update }\n" f"routes for Order {{\n {routes}\n}}\n"
            "policy p for Order { allow * when true }")
    assert code in codes(text)
    assert codes("principal U { a: bool }\nroutes for Nope { GET / -> read }") == ["E125"]


# ---- the example set ---------------------------------------------------------------------


def test_the_projects_example_decides_from_its_data():
    engine = Engine.from_path(EXAMPLES / "projects")
    for name, allowed in [("maintainer-triage.json", True), ("guest-private.json", False)]:
        request = json.loads((EXAMPLES / "projects" / "requests" / name).read_text())
        assert engine.check(request).allowed is allowed
    hit = engine.policy_set.routes.match("DELETE", "/issues/i1/comments/c7")
    assert (hit.resource, hit.action, hit.id, hit.attrs) == ("Comment", "delete", "c7",
                                                              {"issue": "i1"})


def test_sensitive_attributes_inside_records_are_masked_in_logs():
    ps = compile_text("""
        record Card { number: string sensitive  brand: string }
        principal U { roles: set<string> }
        resource Pay { card: Card  cards: map<string, Card>  actions read }
        policy p for Pay { allow read when true  show * }""")
    records = []
    engine = Engine(ps, decision_sink=records.append, log_attributes=True)
    card = {"number": "4111111111111111", "brand": "visa"}
    engine.check({"principal": {"type": "U", "id": "u", "attrs": {"roles": []}},
                  "action": "read", "resource": {"type": "Pay", "id": "p",
                                                 "attrs": {"card": card, "cards": {"a": card}}}})
    attrs = records[0]["resource"]["attrs"]
    assert attrs == {"card": {"number": "***", "brand": "visa"},
                     "cards": {"a": {"number": "***", "brand": "visa"}}}
