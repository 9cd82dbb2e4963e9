"""Language 1.2: entity types, parents, references, `in` through the hierarchy, entity
literals, typed ownership, type narrowing and named conditions, decided end to end
(LANGUAGE.md, "Version 1.2"). Outputs have their own module (test_outputs.py)."""

from __future__ import annotations

import json

import pytest

from policyd import Engine, PolicyError, RequestError, compile_text
from policyd.engine.explain import render

from . import relations as rel

ORG = """
entity Group in Group
entity Organization in Group {
  readers: Group
  admins: Group
  country: string
  secret?: string sensitive
}
entity Folder in Folder {
  owner: User
}
principal User in Group, Organization { email: string }
principal Staff { email: string  license: string }
resource Document in Folder owned by owner {
  owner: User
  org: Organization
  folder: Folder
  public: bool
  viewers: set<Group>
  actions read, write, share, audit
}
policy docs for Document {
  allow read when resource.public
  allow read when principal in resource.viewers
  allow write when principal owns resource
  allow share when principal in resource.org.admins
  allow audit when resource.org.country == "FR" and principal == resource.folder.owner
  deny share when principal in Group("banned")
}
"""

DATA = [
    {"type": "Group", "id": "staff"},
    {"type": "Group", "id": "eng", "parents": [{"type": "Group", "id": "staff"}]},
    {"type": "Group", "id": "admins"},
    {"type": "Group", "id": "banned"},
    {"type": "Organization", "id": "acme", "attrs": {"readers": "staff", "admins": "admins",
                                                     "country": "FR"}},
    {"type": "Folder", "id": "root", "attrs": {"owner": "alice"}},
    {"type": "Folder", "id": "sub", "attrs": {"owner": "bob"},
     "parents": [{"type": "Folder", "id": "root"}]},
    {"type": "User", "id": "alice", "parents": [{"type": "Group", "id": "eng"}]},
]


def engine(tmp_path, policy=ORG, data=DATA) -> Engine:
    (tmp_path / "set.policy").write_text(policy, encoding="utf-8")
    if data is not None:
        (tmp_path / "set.data.jsonl").write_text(
            "\n".join(json.dumps(e) for e in data) + "\n", encoding="utf-8")
    return Engine.from_path(tmp_path)


def doc(**attrs) -> dict:
    base = {"owner": "alice", "org": "acme", "folder": "sub", "public": False, "viewers": []}
    return {"type": "Document", "id": "d1", "attrs": {**base, **attrs}}


def user(uid="alice", parents=None, ptype="User") -> dict:
    out = {"type": ptype, "id": uid, "attrs": {"email": f"{uid}@example.com"}}
    if ptype == "Staff":
        out["attrs"]["license"] = "L1"
    if parents is not None:
        out["parents"] = [{"type": t, "id": i} for t, i in parents]
    return out


def check(e: Engine, principal: dict, action: str, resource: dict):
    return e.check({"principal": principal, "action": action, "resource": resource})


def test_in_walks_the_hierarchy_from_the_data(tmp_path):
    e = engine(tmp_path)
    # alice is in eng, eng in staff: a viewer group two levels up grants read
    assert check(e, user(), "read", doc(viewers=["staff"])).reasons == ["docs#2"]
    assert not check(e, user("carol"), "read", doc(viewers=["staff"])).allowed


def test_parents_sent_in_the_request_join_the_datas(tmp_path):
    e = engine(tmp_path)
    carol = user("carol", [("Group", "eng")])  # eng's own ancestors come from the data
    assert check(e, carol, "read", doc(viewers=["staff"])).allowed
    # a deny through a parent the request sent holds too
    banned = user("carol", [("Group", "banned"), ("Organization", "acme")])
    assert check(e, banned, "share", doc()).reasons == ["docs#6"]


def test_parents_of_an_undeclared_type_are_a_request_error(tmp_path):
    e = engine(tmp_path)
    with pytest.raises(RequestError, match=r"principal\.parents\[0\].*Folder"):
        check(e, user("carol", [("Folder", "root")]), "read", doc())
    with pytest.raises(RequestError, match="no parent types"):
        check(e, user("s", [("Group", "eng")], "Staff"), "read", doc())


def test_reads_through_references_and_missing_data(tmp_path):
    e = engine(tmp_path)
    assert check(e, user("x", [("Group", "admins")]), "share", doc()).allowed
    # bob owns the folder the document is in, and acme is French
    assert check(e, user("bob"), "audit", doc()).reasons == ["docs#5"]
    assert not check(e, user("alice"), "audit", doc()).allowed
    # a reference the data does not hold denies, naming the reference's path
    d = check(e, user("bob"), "audit", doc(org="ghost"))
    assert d.reasons == ["missing_data:resource.org"]


def test_reference_equality_needs_the_type_too(tmp_path):
    e = engine(tmp_path)
    # a Staff principal with id "bob" is not the User bob that owns the folder
    assert not check(e, user("bob", ptype="Staff"), "audit", doc()).allowed
    # typed ownership: `owner: User`, so a Staff "alice" owns nothing
    assert check(e, user("alice"), "write", doc()).allowed
    assert not check(e, user("alice", ptype="Staff"), "write", doc()).allowed


def test_explain_shows_the_chain_that_made_in_hold(tmp_path):
    e = engine(tmp_path)
    request = {"principal": user(), "action": "read", "resource": doc(viewers=["staff"])}
    out = e.explain(request)
    held = next(r for r in out["rules"] if r["rule"] == "docs#2")
    assert held["via"] == ['User("alice") -> Group("eng") -> Group("staff")']
    assert 'via: User("alice") -> Group("eng") -> Group("staff")' in render(out)


STORED = """
entity Team in Team
principal User in Team stored { name: string }
resource Repo stored { team: Team  actions read }
policy repos for Repo {
  allow read when principal in resource.team
}
"""


def test_a_type_stored_as_a_whole_is_named_by_type_and_id_alone(tmp_path):
    data = [{"type": "Team", "id": "core"}, {"type": "Team", "id": "sub",
                                            "parents": [{"type": "Team", "id": "core"}]},
            {"type": "User", "id": "u1", "attrs": {"name": "U"},
             "parents": [{"type": "Team", "id": "sub"}]},
            {"type": "Repo", "id": "r1", "attrs": {"team": "core"}}]
    e = engine(tmp_path, STORED, data)
    u1, r1 = {"type": "User", "id": "u1"}, {"type": "Repo", "id": "r1"}
    assert check(e, u1, "read", r1).allowed
    # not in the data: its required attribute is missing
    assert check(e, {"type": "User", "id": "u9"}, "read", r1).reasons == \
        ["missing_data:principal.name"]
    for extra in ({"attrs": {"name": "x"}}, {"parents": [{"type": "Team", "id": "core"}]}):
        with pytest.raises(RequestError, match="stored as a whole"):
            check(e, {**u1, **extra}, "read", r1)


def test_plans_over_relationships_select_what_check_allows(tmp_path):
    data = [{"type": "Team", "id": "core"}, {"type": "Team", "id": "sub",
                                            "parents": [{"type": "Team", "id": "core"}]},
            {"type": "User", "id": "u1", "attrs": {"name": "U"},
             "parents": [{"type": "Team", "id": "sub"}]},
            *({"type": "Repo", "id": f"r{i}", "attrs": {"team": t}}
              for i, t in enumerate(["core", "sub", "other", "core"]))]
    e = engine(tmp_path, STORED, data)
    plan = e.plan({"principal": {"type": "User", "id": "u1"}, "action": "read",
                   "resource": {"type": "Repo"}})
    rows = {f"r{i}": {"team": t} for i, t in enumerate(["core", "sub", "other", "core"])}
    chosen = {i for i, attrs in rows.items() if plan.matches(attrs, id=i)}
    checked = {i for i in rows if check(e, {"type": "User", "id": "u1"}, "read",
                                        {"type": "Repo", "id": i}).allowed}
    assert chosen == checked == {"r0", "r1", "r3"}


def test_resource_in_with_the_resource_unknown_uses_the_data(tmp_path):
    import random
    h = rel.drive(random.Random(4), 20, 4, 60, 12, 0.2)
    e = engine(tmp_path, rel.DRIVE, h.entries)
    for uid in h.principals[:6]:
        plan = e.plan({"principal": {"type": "User", "id": uid}, "action": "write",
                       "resource": {"type": "Document"}})
        ids = [f"doc_{j}" for j in range(60)]
        chosen = {i for i in ids if plan.matches({"public": False}, id=i)} \
            if plan.kind == "conditional" else (set(ids) if plan.kind == "always_allowed"
                                                 else set())
        checked = {i for i in ids if check(e, {"type": "User", "id": uid}, "write",
                                           {"type": "Document", "id": i}).allowed}
        assert chosen == checked


def test_a_plan_through_a_reference_reads_the_data(tmp_path):
    import random
    h = rel.repos(random.Random(14), 20, 40, 8, 3, 0.2)
    e = engine(tmp_path, rel.REPOS, h.entries)
    rows = {x["id"]: x["attrs"] for x in h.entries if x["type"] == "Repository"}
    for uid in h.principals[:8]:
        for action in ("read", "write", "admin"):
            plan = e.plan({"principal": {"type": "User", "id": uid}, "action": action,
                           "resource": {"type": "Repository"}})
            chosen = {i for i, a in rows.items() if plan.matches(a, id=i)}
            checked = {i for i in rows if check(e, {"type": "User", "id": uid}, action,
                                                {"type": "Repository", "id": i}).allowed}
            assert chosen == checked, (uid, action)


# ---- the checker ---------------------------------------------------------------------


def problems(text: str) -> list[str]:
    try:
        compile_text(text)
    except PolicyError as exc:
        return [f"{d.code} {d.message}" for d in exc.diagnostics if d.is_error]
    return []


def test_type_errors_of_relationships():
    base = "entity Group\nentity Team in Team\nprincipal User in Group { tags: set<string> }\n" \
        "resource Doc { group: Group  actions read }\n"
    assert any(p.startswith("E336") for p in problems(
        base + "policy p for Doc { allow read when principal in principal.tags }"))
    assert any(p.startswith("E337") for p in problems(
        base + "policy p for Doc { allow read when principal in Team(\"t\") }"))
    assert any(p.startswith("E320") for p in problems(
        base + "policy p for Doc { allow read when resource.group == \"eng\" }"))
    assert any(p.startswith("E339") for p in problems(
        base + "policy p for Doc { allow read when principal in Group(1) }"))
    assert any(p.startswith("E132") for p in problems(
        "entity Group in Gruop\nprincipal User {}\nresource Doc { actions read }\n"))
    assert any(p.startswith("E338") for p in problems(
        "principal User { email: string }\nresource Doc { owner: User  actions read }\n"
        "policy p for Doc { allow read when resource.owner.email == \"x\" }"))
    assert not problems(base + "policy p for Doc { allow read when principal in "
                        "resource.group and principal in [Group(\"a\"), Group(\"b\")] }")


NARROW = """
principal Clinician { license: string  teams: set<string> }
principal Patient { mrn: string }
resource Record { patient: string  actions read, write }
condition is_clinician = principal.type == "Clinician"
policy records for Record {
  condition treating = is_clinician and principal.license != ""
  allow read when treating
  allow write when principal.type in ["Clinician"] and principal.license == "x"
  allow write when principal.license == "y" unless principal.type != "Clinician"
  allow read when principal.type == "Patient" and principal.mrn == resource.patient
}
"""


def test_narrowing_and_named_conditions_decide_as_written(tmp_path):
    e = engine(tmp_path, NARROW, None)
    rec = {"type": "Record", "id": "r", "attrs": {"patient": "m1"}}
    doc_ = {"type": "Clinician", "id": "c", "attrs": {"license": "y", "teams": []}}
    pat = {"type": "Patient", "id": "p", "attrs": {"mrn": "m1"}}
    assert check(e, doc_, "read", rec).reasons == ["records#1"]
    assert check(e, doc_, "write", rec).reasons == ["records#3"]
    assert check(e, pat, "read", rec).reasons == ["records#4"]
    assert not check(e, pat, "write", rec).allowed


def test_conditions_are_checked_and_refused_in_a_cycle():
    found = problems("principal U {}\nresource R { actions read }\n"
                     "policy p for R {\n  condition a = b\n  condition b = a\n"
                     "  allow read when a\n}")
    assert any(p.startswith("E342") for p in found)
    found = problems("principal U {}\nresource R { actions read }\nconst c = 1\n"
                     "condition c = true\npolicy p for R { allow read when true }")
    assert any(p.startswith("E341") for p in found)
    found = problems("principal U {}\nresource R { actions read }\n"
                     "policy p for R {\n  condition a = principal.nope\n"
                     "  allow read when true\n}")
    assert any(p.startswith("E311") for p in found)  # checked where declared, used or not
    found = problems("principal U { x: string }\nresource R { actions read }\n"
                     "policy p for R { allow read when principal.type == \"Clinician\" }")
    assert any(p.startswith("E340") for p in found)
    found = problems("principal User {}\nresource R { actions read }\n"
                     "policy p for R { allow read when principal.type in [\"Usr\"] }")
    assert any(p.startswith("E340") for p in found)


def test_data_problems_are_diagnostics_with_lines(tmp_path):
    policy = "entity Group in Group\nprincipal User in Group {}\nresource R { actions read }\n"
    cases = [
        ([{"type": "Group", "id": "a", "parents": [{"type": "User", "id": "x"}]}], "E507"),
        ([{"type": "Group", "id": "a", "parents": [{"type": "Group", "id": "b"}]},
          {"type": "Group", "id": "b", "parents": [{"type": "Group", "id": "a"}]}], "E508"),
        ([{"type": "Group", "id": "a", "parents": "b"}], "E507"),
        ([{"type": "Group", "id": "a", "parents": [{"type": "Group", "id": "a"}]}], "E508"),
        ([{"type": "Group", "id": "c", "parents": [{"type": "Group", "id": "a"}]},  # later
          {"type": "Group", "id": "a", "parents": [{"type": "Group", "id": "b"}]},
          {"type": "Group", "id": "b", "parents": [{"type": "Group", "id": "c"}]}], "E508"),
    ]
    for data, code in cases:
        with pytest.raises(PolicyError) as exc:
            engine(tmp_path, policy, data)
        found = [d for d in exc.value.diagnostics if d.code == code]
        assert found and found[0].line >= 1, (code, exc.value.diagnostics)
    (tmp_path / "set.data.jsonl").unlink()
    with pytest.raises(PolicyError) as exc:
        engine(tmp_path, "principal User {}\nresource R { actions read }\n",
               [{"type": "User", "id": "u", "parents": []}])
    assert [d.code for d in exc.value.diagnostics] == ["E509"]


def test_searches_over_relationships_agree_with_check_on_every_pair(tmp_path):
    """AuthZEN's "who can write this repository" and "which repositories may this user
    write", answered through teams and the owning organisation: each equals deciding
    every (user, repository) pair one at a time, in process and over HTTP."""
    import httpx

    from .conftest import EXAMPLES
    from .test_authzen import _serve

    engine = Engine.from_path(EXAMPLES / "repos")
    data = [json.loads(line) for line in
            (EXAMPLES / "repos" / "repos.data.jsonl").read_text().splitlines()]
    users = sorted(e["id"] for e in data if e["type"] == "User")
    repos = sorted(e["id"] for e in data if e["type"] == "Repository")

    def allowed(user, repo, action):
        return engine.check({"principal": {"type": "User", "id": user}, "action": action,
                             "resource": {"type": "Repository", "id": repo}}).allowed

    server, url = _serve(tmp_path, EXAMPLES / "repos")
    try:
        for action in ("read", "write", "admin"):
            for repo in repos:
                want = [u for u in users if allowed(u, repo, action)]
                request = {"principal": {"type": "User", "id": users[0]}, "action": action,
                           "resource": {"type": "Repository", "id": repo}}
                assert list(engine.search("subject", request)[0].results) == want
                body = {"subject": {"type": "User"}, "action": {"name": action},
                        "resource": {"type": "Repository", "id": repo}}
                found = httpx.post(url + "/access/v1/search/subject", json=body, timeout=10)
                assert [r["id"] for r in found.json()["results"]] == want
            for user in users:
                want = [r for r in repos if allowed(user, r, action)]
                request = {"principal": {"type": "User", "id": user}, "action": action,
                           "resource": {"type": "Repository"}}
                assert list(engine.search("resource", request)[0].results) == want
        assert list(engine.search("subject", {
            "principal": {"type": "User", "id": "ana"}, "action": "write",
            "resource": {"type": "Repository", "id": "api"}})[0].results) == \
            ["ana", "cleo", "eli", "fay"]  # a team's team, org admins and writers, admins
    finally:
        server.terminate()


def test_a_large_data_file_is_read_in_pieces_with_the_same_lines(tmp_path, monkeypatch):
    """A data file over the piece size is kept as pieces that end at line ends (one str
    of 200 MB stalled decisions for 0.4-0.9 s during a reload): the entries, the graph
    and the line of a problem are exactly those of reading it whole."""
    from policyd.engine import datafiles
    from policyd.engine.compiler import compile_path
    from policyd.language import sources

    (tmp_path / "set.policy").write_text(
        "entity Node in Node\nprincipal User in Node stored {}\nresource Doc { actions read }\n"
        'policy docs for Doc {\n  allow read when principal in Node("n0")\n}\n')
    lines = ['{"type": "Node", "id": "n0"}'] + [
        json.dumps({"type": "Node", "id": f"n{i}", "parents": [
            {"type": "Node", "id": f"n{i // 2}"}]}) for i in range(1, 400)]
    lines += [json.dumps({"type": "User", "id": "deep", "parents": [
        {"type": "Node", "id": "n399"}]}), json.dumps({"type": "User", "id": "alone"})]
    data = tmp_path / "set.data.jsonl"
    data.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(sources, "PIECE", 1000)
    monkeypatch.setattr(datafiles, "PIECE", 300)
    assert isinstance(sources.read_snapshot(tmp_path).data[str(data)], sources.DataText)
    engine = Engine(compile_path(tmp_path))

    def read(user):
        return engine.check({"principal": {"type": "User", "id": user}, "action": "read",
                             "resource": {"type": "Doc", "id": "d"}}).allowed

    assert read("deep") and not read("alone")
    lines[250] = '{"type": "Node", "id": "n250", "parents": [{"type": "Nod", "id": "n1"}]}'
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(PolicyError) as exc:
        compile_path(tmp_path)
    assert [(d.code, d.line) for d in exc.value.diagnostics] == [("E507", 251)]


def test_the_decision_log_records_the_ancestors_used_not_the_graph():
    """Item 5: a record names, for each deciding rule with an `in`, the chain that made it
    hold; a decision no `in` decided has none; batches the same per decision."""
    from .conftest import EXAMPLES

    records: list = []
    engine = Engine.from_path(EXAMPLES / "repos", decision_sink=records.append)

    def request(user, action, repo):
        return {"principal": {"type": "User", "id": user}, "action": action,
                "resource": {"type": "Repository", "id": repo}}

    engine.decide(request("ana", "maintain", "api"))
    assert records[-1]["via"] == {"repos.maintainers": [
        'User("ana") -> Team("sre") -> Team("platform") -> RepoPermission("api_maintainers")']}
    engine.decide(request("cleo", "admin", "web"))  # through the owning organisation
    assert records[-1]["via"] == {"repos.org_admins": [
        'User("cleo") -> OrgPermission("acme_admins")']}
    engine.decide(request("dev", "write", "api"))
    assert records[-1]["reasons"] == ["default_deny"] and "via" not in records[-1]
    engine.decide_batch({"type": "User", "id": "ben"}, [
        {"resource": {"type": "Repository", "id": "web"}, "actions": ["write", "admin"]}])
    assert records[-2]["via"] == {"repos.writers": [
        'User("ben") -> Team("frontend") -> RepoPermission("web_writers")']}
    assert "via" not in records[-1]
