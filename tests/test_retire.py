"""A replaced set's entity data is taken apart in the background, a batch at a time (a
million entities freed at once stopped decisions for 0.4 s), and only when nothing can
read it any more: never while another engine, a caller, or the set that replaced it
still holds the set or its data."""

from __future__ import annotations

import json
import time

import pytest

from policyd import Engine
from policyd.engine import retire
from policyd.engine.compiler import compile_path

SET = """entity Node in Node
principal User in Node stored {}
resource Doc { actions read }
policy docs for Doc {
  allow read when principal in Node("n0")
}
"""


def _set(root, n=300, rule='Node("n0")'):
    root.mkdir(exist_ok=True)
    (root / "set.policy").write_text(SET.replace('Node("n0")', rule))
    lines = ['{"type": "Node", "id": "n0"}'] + [json.dumps(
        {"type": "Node", "id": f"n{i}", "parents": [{"type": "Node", "id": f"n{i // 2}"}]})
        for i in range(1, n)] + ['{"type": "User", "id": "u", "parents": '
                                 '[{"type": "Node", "id": "n299"}]}']
    (root / "set.data.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(retire, "MIN_ENTITIES", 0)
    monkeypatch.setattr(retire, "GRACE_S", 0.0)
    monkeypatch.setattr(retire, "PATIENCE_S", 1.0)


def _emptied(rows, within=3.0) -> bool:
    end = time.monotonic() + within
    while rows and time.monotonic() < end:
        time.sleep(0.02)
    return not rows


def _read(engine):
    return engine.check({"principal": {"type": "User", "id": "u"}, "action": "read",
                         "resource": {"type": "Doc", "id": "d"}}).allowed


def test_replaced_data_is_taken_apart_once_nothing_holds_it(tmp_path):
    engine = Engine(compile_path(_set(tmp_path / "a")))
    rows = engine.policy_set.entities.entities["Node"].rows  # a view, not a holder
    parents = engine.policy_set.entities.parents["Node"]
    assert len(rows) == 300 and _read(engine)
    engine.swap(compile_path(_set(tmp_path / "b", n=310)))
    assert _emptied(rows) and _emptied(parents)
    assert _read(engine)  # the new set decides on its own data


def test_a_set_another_engine_or_a_caller_holds_is_never_touched(tmp_path):
    kept = compile_path(_set(tmp_path / "a"))
    engine, other = Engine(kept), Engine(kept)
    rows = kept.entities.entities["Node"].rows
    engine.swap(compile_path(_set(tmp_path / "b", n=310)))
    assert not _emptied(rows, within=1.5) and len(rows) == 300
    assert _read(other)
    del other, kept  # too late: the reaper gave up after PATIENCE_S (freed the usual way)
    assert len(rows) == 300


def test_a_policy_edit_shares_the_data_so_it_stays(tmp_path):
    root = _set(tmp_path / "a")
    engine = Engine(compile_path(root))
    rows = engine.policy_set.entities.entities["Node"].rows
    _set(root, rule='Node("n1")')  # the same data, another rule: the data is reused
    engine.swap(compile_path(root))
    assert engine.policy_set.entities.entities["Node"].rows is rows
    assert not _emptied(rows, within=1.5) and len(rows) == 300
    assert _read(engine)  # u is below n1 too
