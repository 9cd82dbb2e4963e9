"""Rule indexing (language/ruleindex.py): a decider that looks up the denies written
for an attribute's value decides exactly as the reference interpreter, which evaluates
every rule; and a large set decides a request without evaluating them all."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from policyd import Engine, compile_text
from policyd.language.parser import parse

from .conftest import Unlimited
from .reference import Reference
from .strategies import ATOMS, SCHEMA, requests, rules

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
KEYS = ['resource.tenant == "{v}"', 'principal.tenant == "{v}"', 'resource.owner == "{v}"',
        'resource.size == {n}', "resource.public == {b}"]
VALUES = ["t1", "t2", "alice", "legal", "a", "b", ""]


@st.composite
def indexed_policies(draw):
    """A Doc policy whose denies mostly start (or end) with an equality on one attribute,
    enough of them to be indexed, mixed with ordinary rules."""
    key = draw(st.sampled_from(KEYS))
    body = []
    for i in range(draw(st.integers(16, 40))):
        eq = key.format(v=draw(st.sampled_from(VALUES)), n=draw(st.integers(0, 3)),
                        b=draw(st.sampled_from(["true", "false"])))
        atom = draw(st.sampled_from(ATOMS + ["true"]))
        cond = f"{eq} and ({atom})" if draw(st.booleans()) else f"({atom}) and {eq}"
        actions = draw(st.sampled_from(["read", "*", "read, share"]))  # 16+ for read
        body.append(f"  x{i}: deny {actions} when {cond}")
    body += ["  " + draw(rules()) for _ in range(draw(st.integers(1, 8)))]
    draw(st.randoms()).shuffle(body)
    return SCHEMA + "policy p for Doc {\n" + "\n".join(body) + "\n}\n"


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), indexed_policies())
def test_indexed_deciders_agree_with_the_reference(data, text):
    ps = compile_text(text, "gen.policy")
    # the case under test: the index is in use. Not every drawn set is indexed: an atom
    # with its own equality (principal.type == "Bot") can come first in a deny and
    # group it elsewhere. If indexing broke, every example is rejected and Hypothesis
    # fails the test as unsatisfiable.
    assume("indexed by" in ps.source)
    engine = Engine(ps, clock=NOW.timestamp, rate_store=Unlimited())
    ref = Reference([parse(text, "gen.policy")], NOW)
    for _ in range(30):
        request = data.draw(requests(ps.schema))
        got, want = engine.check(request), ref.decide(request)
        assert {"allowed": got.allowed, "reasons": list(got.reasons),
                "visible_fields": list(got.visible_fields)} == want, request


def test_a_small_set_is_not_indexed():
    text = SCHEMA + "policy p for Doc {\n" + "\n".join(
        f'  deny read when resource.tenant == "t{i}"' for i in range(15)) + "\n}\n"
    assert "indexed by" not in compile_text(text).source


def test_a_thousand_denies_run_only_the_ones_for_the_value():
    denies = "\n".join(f'  d{i}: deny read when resource.tenant == "t{i}" and '
                       f"principal.level < {i % 9}" for i in range(1000))
    text = ("principal User { roles: set<string>  level: number }\n"
            "resource Doc { tenant: string  kind: string  actions read }\n"
            f"policy p for Doc {{\n{denies}\n  held: deny read when principal.level < 1\n"
            '  allow read when resource.kind == "x"\n}\n')
    engine = Engine(compile_text(text), rate_store=Unlimited())
    req = {"principal": {"type": "User", "id": "u", "attrs": {"roles": [], "level": 0}},
           "action": "read", "resource": {"type": "Doc", "id": "d",
                                          "attrs": {"tenant": "t3", "kind": "x"}}}
    assert engine.check(req).reasons == ["p.d3", "p.held"]  # source order, both
    req["resource"]["attrs"]["tenant"] = "nobody"
    assert engine.check(req).reasons == ["p.held"]
    req["principal"]["attrs"]["level"] = 5
    assert engine.check(req).allowed
