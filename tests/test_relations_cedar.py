"""Relationships decide exactly as Cedar decides them (issue 24): the two models of
LANGUAGE.md 1.2 on random hierarchies made the way Cedar's benchmark generators make
them (connection probability 0.01 to 0.2), 10,000 requests per model, each decided by
policyd and by cedarpy (Cedar's own evaluator); zero disagreements."""

from __future__ import annotations

import json
import random

import pytest

from policyd import Engine

from . import relations as rel

cedarpy = pytest.importorskip("cedarpy", reason="cedarpy (a dev dependency) is not installed")

# (seed, connection probability, sizes): five hierarchies per model, 2,000 requests each
DRIVE_CASES = [(1, 0.01, (40, 8, 150, 20)), (2, 0.05, (30, 6, 100, 20)),
               (3, 0.1, (25, 5, 80, 15)), (4, 0.2, (20, 4, 60, 12)),
               (5, 0.15, (30, 6, 90, 20))]
REPOS_CASES = [(11, 0.01, (40, 80, 15, 5)), (12, 0.05, (30, 60, 12, 4)),
               (13, 0.1, (25, 50, 10, 4)), (14, 0.2, (20, 40, 8, 3)),
               (15, 0.15, (30, 60, 15, 5))]
PER_CASE = 2000


def _engine(tmp_path, policy: str, entries: list[dict]) -> Engine:
    (tmp_path / "model.policy").write_text(policy, encoding="utf-8")
    (tmp_path / "model.data.jsonl").write_text(
        "\n".join(json.dumps(e) for e in entries) + "\n", encoding="utf-8")
    return Engine.from_path(tmp_path)


def _disagreements(tmp_path, policy: str, cedar_policy: str, h: rel.Hierarchy,
                   seed: int) -> list:
    engine = _engine(tmp_path, policy, h.entries)
    reqs = rel.requests(random.Random(seed), h, PER_CASE)
    ours = [engine.check(rel.policyd_request(*r)).allowed for r in reqs]
    theirs = [x.decision == cedarpy.Decision.Allow for x in cedarpy.is_authorized_batch(
        [rel.cedar_request(*r) for r in reqs], cedar_policy, h.cedar)]
    assert len(theirs) == len(reqs)
    return [(r, a, b) for r, a, b in zip(reqs, ours, theirs, strict=True) if a != b]


@pytest.mark.parametrize("seed,p,sizes", DRIVE_CASES)
def test_the_drive_decides_as_cedar(tmp_path, seed, p, sizes):
    h = rel.drive(random.Random(seed), *sizes, p)
    found = _disagreements(tmp_path, rel.DRIVE, rel.DRIVE_CEDAR, h, seed)
    assert not found, found[:5]


@pytest.mark.parametrize("seed,p,sizes", REPOS_CASES)
def test_the_code_host_decides_as_cedar(tmp_path, seed, p, sizes):
    h = rel.repos(random.Random(seed), *sizes, p)
    found = _disagreements(tmp_path, rel.REPOS, rel.REPOS_CEDAR, h, seed)
    assert not found, found[:5]


def test_both_outcomes_occur():
    """The comparison means something: the generated requests are neither all allowed
    nor all denied by Cedar."""
    h = rel.repos(random.Random(13), 25, 50, 10, 4, 0.1)
    reqs = rel.requests(random.Random(13), h, 500)
    results = {x.decision == cedarpy.Decision.Allow for x in cedarpy.is_authorized_batch(
        [rel.cedar_request(*r) for r in reqs], rel.REPOS_CEDAR, h.cedar)}
    assert results == {True, False}
