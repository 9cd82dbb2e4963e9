"""The prover against sampling (issue 25's differential target): random policy pairs, one
mutated from the other by swapping a condition. Whenever random requests find a
difference, `equivalent` must say so; whenever it proves equivalence, random requests
must find none. Every counterexample it gives is replayed by the analysis itself."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd import Engine, compile_text

from .strategies import ACTIONS, ATOMS, FIELDS, SCHEMA, flat_policies, requests

pytest.importorskip("z3")

from policyd.verify.analysis import equivalent  # noqa: E402

# the conditions the model covers today (time, lower and len of a set are `unknown`)
MODELLED = [a for a in ATOMS if not any(word in a for word in (
    "hour(", "weekday(", "context.time", "lower(", "len("))]


def _policies():
    """strategies.policies' rules over the modelled conditions only."""
    return flat_policies(SCHEMA, ACTIONS, FIELDS, FIELDS[1:], MODELLED, star=False, most=3)


def _decided(engine: Engine, request: dict):
    d = engine.check(request)
    return d.allowed, tuple(sorted(d.visible_fields))


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(st.data(), _policies())
def test_equivalence_agrees_with_sampling(data, text):
    atom = data.draw(st.sampled_from([a for a in MODELLED if a in text]))
    other = data.draw(st.sampled_from(MODELLED))
    old = compile_text(text, "old.policy")
    new = compile_text(text.replace(atom, f"({other})", 1), "new.policy")
    found = equivalent(old, new)  # a counterexample is replayed inside, or it raises
    a, b = Engine(old), Engine(new)
    differs = False
    for _ in range(300):
        request = data.draw(requests(old.schema))
        request.pop("write_fields", None)
        if _decided(a, request) != _decided(b, request):
            differs = True
            break
    if differs:
        assert found is not None, "sampling found a difference the prover missed"
    if found is None:
        assert not differs
