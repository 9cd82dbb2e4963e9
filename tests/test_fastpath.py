"""The generated fast path (language/fastpath.py) against the general path: the same
decision, or the same RequestError, for every example request and for random policies
and requests; and the fast path really answers (it is not the general path twice)."""

from __future__ import annotations

import enum
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd import Engine, RequestError, compile_path, compile_text
from policyd.testing.plan import Expectation
from policyd.testing.suite import discover, load

from .conftest import EXAMPLES, NOW
from .strategies import policies, policies11, requests


class Pair:
    """One set decided twice per request: by an engine with fast paths (counting what it
    hands to the general path) and by one without."""

    def __init__(self, ps, clock=lambda: NOW):
        self.fast = Engine(ps, clock=clock)
        self.general = Engine(ps, clock=clock, fast_paths=False)
        self.asked = self.handed = 0
        general = self.fast._general

        def counted(request, explain=False, state=None):
            self.handed += 1
            return general(request, explain, state)

        self.fast._general = counted
        self.fast.swap(ps)  # installed again: the fast path now hands over to `counted`

    def swap(self, ps) -> None:
        if self.fast.policy_set is not ps:
            self.fast.swap(ps)
            self.general.swap(ps)

    def compare(self, request) -> None:
        self.asked += 1
        assert outcome(self.fast, request) == outcome(self.general, request), request

    @property
    def answered(self) -> float:
        return 1 - self.handed / max(1, self.asked)


def outcome(engine: Engine, request):
    try:
        return engine.check(request).to_dict()
    except RequestError as exc:
        return ("invalid", str(exc))


def example_requests(suite) -> list[tuple[dict, dict]]:
    """(entity data, request) of every expectation of the set's tests, per action."""
    out = []
    for test in suite.tests:
        for step in test.steps:
            if isinstance(step, Expectation):
                for action in step.actions:
                    request = {**step.request, "action": action}
                    if step.writing:
                        request["write_fields"] = list(step.writing)
                    out.append((step.data, request))
    return out


@pytest.mark.parametrize("root", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_every_example_request_decides_the_same_on_both_paths(root):
    (source,) = discover(EXAMPLES / root)
    suite = load(source)
    ps = suite.policy_set
    pair = Pair(ps)
    found = example_requests(suite)
    files = sorted((EXAMPLES / root / "requests").glob("*.json"))
    found += [({}, json.loads(f.read_text())) for f in files]
    assert found
    for _ in range(3):  # the first pass fills the memo; the later ones are answered from it
        for data, request in found:
            pair.swap(ps.with_entities(data) if data else ps)
            pair.compare(request)
    if ps.fast is not None:
        assert pair.answered > 0.3, pair.answered


@pytest.fixture(scope="module")
def orders_set():
    return compile_path(EXAMPLES / "orders")


def test_the_fast_path_answers_the_common_case_and_hands_over_the_rest(orders_set):
    pair = Pair(orders_set)
    base = {"principal": {"type": "User", "id": "alice",
                          "attrs": {"roles": ["viewer"], "tenant": "t1", "mfa": False}},
            "action": "read",
            "resource": {"type": "Order", "id": "o1",
                         "attrs": {"owner": "alice", "tenant": "t1", "status": "paid",
                                   "total": 20, "card_last4": "4242", "internal_notes": "",
                                   "shared_with": []}},
            "context": {"ip": "10.1.2.3"}}
    pair.compare(base)
    pair.compare(base)
    assert (pair.asked, pair.handed) == (2, 1)  # the first decision was memoised
    pair.compare({**base, "write_fields": []})
    assert pair.handed == 1  # no fields written: the memoised read
    handed = [
        {**base, "write_fields": ["status"]},  # read grants no write: refused, and named
        {**base, "write_fields": "status"},
        {**base, "write_fields": [7]},
        {**base, "dry_run": True},
        {**base, "principal": {**base["principal"], "attrs": {
            **base["principal"]["attrs"], "roles": ["viewer", "ghost"]}}},  # a warning
        {**base, "resource": {**base["resource"], "type": "Invoice"}},
        {**base, "action": "approve"},
        {**base, "principal": {"type": "User", "id": "alice"}},  # no attrs
    ]
    for request in handed:
        before = pair.handed
        pair.compare(request)
        assert pair.handed == before + 1, request


def test_writes_are_decided_on_the_fast_path(orders_set):
    """An update whose fields are all granted is the memoised allow; any other is handed
    over and refused with the fields named."""
    pair = Pair(orders_set)
    admin = {"type": "User", "id": "root",
             "attrs": {"roles": ["admin"], "tenant": "t1", "mfa": True}}
    base = {"principal": admin, "action": "update",
            "resource": {"type": "Order", "id": "o1",
                         "attrs": {"owner": "alice", "tenant": "t1", "status": "paid",
                                   "total": 20, "card_last4": "4242", "internal_notes": "",
                                   "shared_with": []}},
            "context": {"ip": "10.1.2.3"}}
    granted = {**base, "write_fields": ["status", "internal_notes"]}
    pair.compare(granted)
    pair.compare(granted)
    pair.compare({**granted, "write_fields": ["internal_notes", "status", "status"]})
    assert (pair.asked, pair.handed) == (3, 1)
    assert pair.fast.check(granted).allowed
    for fields in (["owner"], ["status", "nope"], ["type"], ["id"]):
        before = pair.handed
        pair.compare({**base, "write_fields": fields})
        assert pair.handed == before + 1
        assert not pair.fast.check({**base, "write_fields": fields}).allowed


class Role(enum.StrEnum):
    VIEWER = "viewer"


@pytest.mark.parametrize("change", [
    lambda r: r["principal"]["attrs"].update(roles=[Role.VIEWER]),  # a str subclass
    lambda r: r["principal"]["attrs"].update(roles=[["viewer"]]),  # unhashable
    lambda r: r["principal"]["attrs"].update(roles="viewer"),
    lambda r: r["resource"]["attrs"].update(total=float("nan")),
    lambda r: r["resource"]["attrs"].update(total=float("inf")),
    lambda r: r["resource"]["attrs"].update(total=True),
    lambda r: r["resource"]["attrs"].update(owner="x" * 5000),
    lambda r: r["resource"]["attrs"].pop("owner"),
    lambda r: r["resource"]["attrs"].update(extra=1),
    lambda r: r["principal"].update(id=""),
    lambda r: r["principal"].update(id=7),
    lambda r: r.update(action=["read"]),
    lambda r: r["principal"].update(type=["User"]),
    lambda r: r.update(context={"ip": "not an address"}),
    lambda r: r.update(context=None),
])
def test_invalid_requests_are_the_general_paths_errors(orders_set, change):
    pair = Pair(orders_set)
    request = json.loads((EXAMPLES / "orders" / "requests" / "owner-reads.json").read_text())
    pair.compare(request)  # memoised
    change(request)
    pair.compare(request)
    with pytest.raises(RequestError):
        pair.fast.check(request)


def test_a_limited_action_takes_one_token_per_request():
    ps = compile_text("""
principal U { roles: set<string> }
role member
resource Doc { actions read }
policy p for Doc {
  allow read when principal is member
  limit read: 3 per 1m by principal.id
}
""")
    pair = Pair(ps)
    request = {"principal": {"type": "U", "id": "u", "attrs": {"roles": ["member"]}},
               "action": "read", "resource": {"type": "Doc", "id": "d", "attrs": {}}}
    got = [pair.fast.check(request) for _ in range(5)]
    assert [d.allowed for d in got] == [True, True, True, False, False]
    assert got[3].reasons == ["rate_limited", "p#2"] and got[3].retry_after > 0
    assert pair.handed == 1  # the later four: the fast path and its one acquire each
    assert [pair.general.check(request).to_dict() for _ in range(5)] == \
        [d.to_dict() for d in got]


def test_many_types_dispatch_through_tables():
    """More than INLINE_MAX types of each kind: per-type functions found by dict."""
    principals = "\n".join(f"principal P{i} {{ roles: set<string> n: number }}"
                           for i in range(10))
    resources = "\n".join(f"resource R{i} {{ owner: string actions read }}\n"
                          f"policy p{i} for R{i} {{ allow read when principal.n > {i} "
                          f"\n show owner when principal is admin }}" for i in range(10))
    ps = compile_text(f"{principals}\nrole admin\n{resources}")
    assert "FP = {" in ps.source and "FR = {" in ps.source
    pair = Pair(ps)
    for _ in range(2):
        for i in range(10):
            for n in (0, 5, 9.5):
                pair.compare({"principal": {"type": f"P{i}", "id": "p",
                                            "attrs": {"roles": ["admin"], "n": n}},
                              "action": "read",
                              "resource": {"type": f"R{9 - i}", "id": "r",
                                           "attrs": {"owner": "o"}}})
    assert pair.answered >= 0.45


def test_swap_and_the_decision_sink_use_the_installed_set():
    one = compile_text("principal U { }\nresource D { actions read }\n"
                       "policy p for D { allow read }")
    two = compile_text("principal U { }\nresource D { actions read }\n"
                       "policy p for D { deny read }")
    records = []
    engine = Engine(one, decision_sink=records.append)
    request = {"principal": {"type": "U", "id": "u", "attrs": {}}, "action": "read",
               "resource": {"type": "D", "id": "d", "attrs": {}}}
    assert [engine.check(request).allowed for _ in range(2)] == [True, True]
    engine.swap(two)
    assert [engine.check(request).allowed for _ in range(2)] == [False, False]
    assert [r["allowed"] for r in records] == [True, True, False, False]
    assert {r["policy_version"] for r in records[2:]} == {two.version} != {one.version}


SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("drawn_policies", [policies, policies11], ids=["1.0", "1.1"])
@SETTINGS
@given(data=st.data())
def test_random_policies_decide_the_same_on_both_paths(drawn_policies, data):
    """Both language versions: records, maps and scoped roles too (stored attributes
    leave a type to the general path)."""
    ps = compile_text(data.draw(drawn_policies()), "gen.policy")
    pair = Pair(ps)
    drawn = [data.draw(requests(ps.schema)) for _ in range(15)]
    for request in drawn + drawn:
        pair.compare(request)


def test_check_keeps_its_signature(orders_set):
    engine = Engine(orders_set)
    request = json.loads((EXAMPLES / "orders" / "requests" / "owner-reads.json").read_text())
    plain = engine.check(request=request)
    assert engine.check(request=request) is plain  # memoised, from the fast path
    explained = engine.check(request, explain=True)
    assert (explained.allowed, explained.visible_fields) == (plain.allowed, plain.visible_fields)


# ---- issue 28, item 15: every shape a front door or a client sends takes the fast path -----


NO_CONTEXT = """
principal User { roles: set<string>  tenant: string }
principal Service {}
role viewer
resource Doc owned by owner {
  owner: string
  tenant: string
  actions read, update
}
policy docs for Doc {
  fence: deny * when principal has tenant and principal.tenant != resource.tenant
  allow read when principal is viewer
  allow read when principal.type == "Service"
  allow update when principal owns resource
  show *
  write tenant when principal owns resource
}
"""


def _front_doors():
    """Each front door as: request dict -> the dict the engine gets from it."""
    from policyd import wire
    from policyd.server.authzen import AuthZen

    def authzen(engine):
        z = AuthZen(engine)
        def to(r):
            p, res = r["principal"], r["resource"]
            return z.request({"type": p["type"], "id": p["id"], "properties": p.get("attrs")},
                             {"name": r["action"]},
                             {"type": res["type"], "id": res["id"],
                              "properties": res.get("attrs")}, r.get("context"))
        return to

    return {
        "in process": lambda e: lambda r: r,
        "in process, every key at its default": lambda e: lambda r: {
            **r, "context": r.get("context") or {}, "dry_run": False,
            "write_fields": r.get("write_fields") or []},
        "gRPC, compact attributes": lambda e: lambda r: wire.request_dict(
            wire.check_request(r)),
        "gRPC, Struct attributes": lambda e: lambda r: wire.request_dict(
            wire.check_request(r, compact=False)),
        "gRPC, an empty context": lambda e: lambda r: wire.request_dict(
            wire.check_request({**r, "context": r.get("context") or {}})),
        "AuthZEN": authzen,
    }


def _generated(context: bool) -> list[dict]:
    import random
    rnd = random.Random(5)
    out = []
    for i in range(300):
        if rnd.random() < 0.2:
            p = {"type": "Service", "id": f"s{i % 7}"}
            if rnd.random() < 0.5:
                p["attrs"] = {}
        else:
            p = {"type": "User", "id": f"u{i % 13}", "attrs": {
                "roles": rnd.sample(["viewer", "x"], rnd.randint(0, 2)),
                "tenant": f"t{rnd.randrange(2)}"}}
        r = {"type": "Doc", "id": f"d{i % 17}",
             "attrs": {"owner": f"u{rnd.randrange(13)}", "tenant": f"t{rnd.randrange(2)}"}}
        request = {"principal": p, "action": rnd.choice(["read", "update"]), "resource": r}
        if request["action"] == "update" and rnd.random() < 0.5:
            request["write_fields"] = ["tenant"]
        if context:
            request["context"] = {"country": rnd.choice(["NZ", "FR"])}
        out.append(request)
    return out


@pytest.mark.parametrize("declared", [False, True])
@pytest.mark.parametrize("door", list(_front_doors()))
def test_every_front_doors_shape_takes_the_fast_path(declared, door):
    text = NO_CONTEXT + ("context { country?: string }\n" if declared else "")
    ps = compile_text(text)
    pair = Pair(ps)
    to = _front_doors()[door](pair.fast)
    requests = [to(r) for r in _generated(declared)]
    for request in requests:  # the first of each decision fills the memo (general path)
        pair.compare(request)
    pair.handed = pair.asked = 0
    for request in requests:
        pair.compare(request)
    # unknown roles ("x") are the general path's to report: those alone may be handed over
    unusual = sum(1 for r in requests if "x" in r["principal"].get("attrs", {}).get("roles", ()))
    assert pair.handed == unusual, (door, pair.handed, unusual)


@pytest.mark.parametrize("declared", [False, True])
def test_a_null_context_is_refused_on_both_paths(declared):
    text = NO_CONTEXT + ("context { country?: string }\n" if declared else "")
    pair = Pair(compile_text(text))
    request = {**_generated(declared)[0], "context": None}
    for _ in range(2):
        pair.compare(request)
    with pytest.raises(RequestError, match="context must be an object"):
        pair.fast.check(request)
