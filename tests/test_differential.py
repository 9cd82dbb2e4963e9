"""The compiled engine must agree with the AST-walking reference on every decision field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd import Engine, compile_text
from policyd.engine.compiler import compile_path, compile_sources
from policyd.language import codegen
from policyd.language.parser import parse
from policyd.language.sources import read_sources

from .conftest import Unlimited
from .reference import Reference
from .strategies import entity_data, policies, policies11, requests

EXAMPLES = Path(__file__).resolve().parent.parent / "policies" / "examples"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _compare(engine: Engine, ref: Reference, request: dict) -> None:
    for explain in (False, True):
        got = engine.check(request, explain=explain)
        want = ref.decide(request, explain=explain)
        assert {"allowed": got.allowed, "reasons": list(got.reasons),
                "visible_fields": list(got.visible_fields)} == want, (request, explain)


@pytest.mark.parametrize("example", ["orders", "documents", "admin"])
def test_examples_agree_with_reference(example):
    path = EXAMPLES / example
    sources = read_sources(path)
    ref = Reference([parse(text, name) for name, text in sources.items()], NOW)
    engine = Engine(compile_path(path), clock=NOW.timestamp, rate_store=Unlimited())

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(requests(engine.policy_set.schema))
    def run(request):
        _compare(engine, ref, request)

    run()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), policies())
def test_generated_policies_agree_with_reference(data, text):
    ps = compile_text(text, "gen.policy")
    engine = Engine(ps, clock=NOW.timestamp)
    ref = Reference([parse(text, "gen.policy")], NOW)
    for _ in range(25):
        _compare(engine, ref, data.draw(requests(ps.schema)))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), policies())
def test_looped_allows_with_one_shared_mask_agree_with_reference(data, text):
    """The allow chain of large sets (SPECIALIZE_MAX exceeded): a loop, then one mask."""
    with mock.patch.object(codegen, "SPECIALIZE_MAX", 0):
        ps = compile_text(text, "gen.policy")
    engine = Engine(ps, clock=NOW.timestamp)
    ref = Reference([parse(text, "gen.policy")], NOW)
    for _ in range(15):
        _compare(engine, ref, data.draw(requests(ps.schema)))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), policies11())
def test_generated_11_policies_agree_with_reference(data, text):
    """Records, maps, scoped roles and stored attributes from random entity data."""
    ps0 = compile_text(text, "gen.policy")
    entries = data.draw(entity_data(ps0.schema))
    blob = "".join(json.dumps(e) + "\n" for e in entries)
    ps = compile_sources({"gen.policy": text}, "gen", "v", data={"gen.data.jsonl": blob})
    engine = Engine(ps, clock=NOW.timestamp)
    ref = Reference([parse(text, "gen.policy")], NOW, entries)
    for _ in range(25):
        request = data.draw(requests(ps.schema))
        ids = [e["id"] for e in entries if e["kind"] == "principal"]
        if ids and data.draw(st.integers(0, 3)):  # mostly principals the data knows
            request["principal"]["id"] = data.draw(st.sampled_from(ids))
        _compare(engine, ref, request)
