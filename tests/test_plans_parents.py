"""Plans over a parent column (1.2, issue 24 item 6): rows of a type whose parents are not
all in the entity data carry their direct parent in a column; `resource in F` becomes
`parent IN (F and every folder below it)`, and a plan selects exactly the rows `check`
allows when each row is sent with its parent."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest

from policyd import Engine
from policyd.plans import PlanUntranslatable, to_sql

SET = """
principal User stored { owned_folders: set<Folder> }
resource Folder in Folder stored { actions read }
resource Doc in Folder {
  title: string
  actions read, delete
}
policy docs for Doc {
  owners: allow read, delete when resource in principal.owned_folders
  shared: allow read when resource in Folder("shared")
  archive: deny delete when resource in Folder("archive")
}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rng = random.Random(24)
    root = tmp_path_factory.mktemp("parents")
    (root / "set.policy").write_text(SET)
    folders = ["shared", "archive"] + [f"f{i}" for i in range(40)]
    entries = []
    for i, f in enumerate(folders):
        parent = [] if i < 4 else [{"type": "Folder", "id": folders[rng.randrange(i)]}]
        entries.append({"type": "Folder", "id": f, "parents": parent})
    users = [f"u{i}" for i in range(12)]
    for u in users:
        owned = rng.sample(folders, rng.randrange(0, 4))
        entries.append({"type": "User", "id": u, "attrs": {"owned_folders": owned}})
    (root / "set.data.jsonl").write_text("\n".join(map(json.dumps, entries)) + "\n")
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE docs (id TEXT PRIMARY KEY, title TEXT, folder TEXT)")
    # a parent the data holds, one it does not (it has no parents of its own), or none
    rows = [(f"d{i}", f"t{i}", rng.choice(folders + ["lost", None])) for i in range(300)]
    db.executemany("INSERT INTO docs VALUES (?, ?, ?)", rows)
    return Engine.from_path(root), db, rows, users


def _allowed(engine, user, action, row) -> bool:
    resource = {"type": "Doc", "id": row[0], "attrs": {"title": row[1]}}
    if row[2] is not None:
        resource["parents"] = [{"type": "Folder", "id": row[2]}]
    return engine.check({"principal": {"type": "User", "id": user}, "action": action,
                         "resource": resource}).allowed


@pytest.mark.parametrize("action", ["read", "delete"])
def test_a_plan_over_the_parent_column_selects_exactly_what_check_allows(world, action):
    engine, db, rows, users = world
    columns = {"id": "id", "title": "title", "parent": "folder"}
    selected_some = False
    for user in users:
        plan = engine.plan({"principal": {"type": "User", "id": user}, "action": action,
                            "resource": {"type": "Doc"}})
        want = sorted(r[0] for r in rows if _allowed(engine, user, action, r))
        if plan.kind == "always_denied":
            assert want == []
            continue
        where, params = to_sql(plan, columns, "sqlite")
        got = sorted(i for (i,) in db.execute(f"SELECT id FROM docs WHERE {where}", params))
        assert got == want, (user, where)
        matched = sorted(r[0] for r in rows if plan.matches(
            {"title": r[1], **({"parent": r[2]} if r[2] is not None else {})}, r[0]))
        assert matched == want
        selected_some = selected_some or bool(want)
    assert selected_some  # the generated world grants something


def test_without_a_parent_column_the_plan_says_what_is_missing(world):
    engine, *_ = world
    plan = engine.plan({"principal": {"type": "User", "id": "u1"}, "action": "read",
                        "resource": {"type": "Doc"}})
    with pytest.raises(PlanUntranslatable, match="parent"):
        to_sql(plan, {"id": "id", "title": "title"}, "sqlite")


def test_sqlalchemy_takes_the_parent_column_the_same_way(world):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from policyd.plans.sqlalchemy import where

    engine, _, rows, users = world
    meta = sqlalchemy.MetaData()
    docs = sqlalchemy.Table("docs", meta, sqlalchemy.Column("id", sqlalchemy.String,
                                                            primary_key=True),
                            sqlalchemy.Column("title", sqlalchemy.String),
                            sqlalchemy.Column("folder", sqlalchemy.String, nullable=True))
    db = sqlalchemy.create_engine("sqlite://")
    meta.create_all(db)
    with db.begin() as conn:
        conn.execute(docs.insert(), [{"id": i, "title": t, "folder": f} for i, t, f in rows])
        for user in users:
            plan = engine.plan({"principal": {"type": "User", "id": user}, "action": "read",
                                "resource": {"type": "Doc"}})
            condition = where(plan, {"id": docs.c.id, "title": docs.c.title,
                                     "parent": docs.c.folder})
            got = sorted(conn.execute(sqlalchemy.select(docs.c.id).where(condition)).scalars())
            assert got == sorted(r[0] for r in rows if _allowed(engine, user, "read", r))
