"""Regression tests for the second attack pass and a new user's week (issue #28): query
plans and searches (items 5 and 7).

Each test failed on the code before the fix; the note of issue #28 lists them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

# ---- 5. plans and per-row check disagreed, SQL returning more rows ------------------------

DATED = """
principal User { roles: set<string> }
role viewer
resource Post {
  created: time
  host: ip
  price: number
  qty: number
  actions read, audit, buy
}
policy posts for Post {
  allow read when principal is viewer and resource.created > time("2025-01-01T00:00:00Z")
  allow audit when principal is viewer and resource.host in [ip("10.0.0.0/8")]
  allow buy when principal is viewer and resource.price * resource.qty < 100
  show price when resource.price > 1
}
"""
VIEWER = {"type": "User", "id": "u", "attrs": {"roles": ["viewer"]}}


def _post_plan(action: str):
    from policyd import Engine, compile_text
    return Engine(compile_text(DATED)).plan({"principal": VIEWER, "action": action,
                                             "resource": {"type": "Post"}})


def test_a_sqlalchemy_datetime_column_in_sqlite_is_compared_as_a_time(tmp_path):
    import datetime as dt

    import sqlalchemy as sa

    from policyd.plans import PlanUntranslatable
    from policyd.plans.sqlalchemy import where

    engine = sa.create_engine(f"sqlite:///{tmp_path}/posts.db")
    meta = sa.MetaData()
    posts = sa.Table("posts", meta, sa.Column("id", sa.String, primary_key=True),
                     sa.Column("created", sa.DateTime), sa.Column("label", sa.String))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(posts.insert(), [
            {"id": "old", "created": dt.datetime(2020, 6, 1), "label": "2020-06-01"},
            {"id": "new", "created": dt.datetime(2026, 6, 1), "label": "2026-06-01"},
            {"id": "edge", "created": dt.datetime(2025, 1, 1), "label": "x"}])
    plan = _post_plan("read")
    with engine.connect() as conn:  # was: the 2020 row, compared as text with an epoch
        got = {r[0] for r in conn.execute(sa.select(posts.c.id).where(
            where(plan, {"id": posts.c.id, "created": posts.c.created})))}
    assert got == {"new"}
    with pytest.raises(PlanUntranslatable, match="`created` is a time"), \
            engine.connect() as conn:  # a string column holds no time the contract knows
        conn.execute(sa.select(posts.c.id).where(
            where(plan, {"id": posts.c.id, "created": posts.c.label})))


def test_untranslatable_names_the_attribute_and_the_rule():
    from policyd.plans import PlanUntranslatable, to_sql

    with pytest.raises(PlanUntranslatable) as err:
        to_sql(_post_plan("audit"), {"host": "host"}, "sqlite")
    assert err.value.attribute == "host" and err.value.rule == "posts#2"
    assert "`host` is an ip" in str(err.value) and "posts#2" in str(err.value)
    with pytest.raises(PlanUntranslatable, match="arithmetic") as err:  # PostgreSQL raises
        to_sql(_post_plan("buy"), {"price": "price", "qty": "qty"}, "postgresql")
    assert err.value.attribute in ("price", "qty")


def test_overflowing_arithmetic_is_unknown_in_sqlite_not_infinite():
    import sqlite3

    from policyd.plans import to_sql

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE p (id TEXT, price REAL, qty REAL)")
    conn.executemany("INSERT INTO p VALUES (?,?,?)", [("a", 2, 3), ("big", -1e300, 1e300),
                                                      ("nan", 1e300, 1e300)])
    where, params = to_sql(_post_plan("buy"), {"id": "id", "price": "price", "qty": "qty"})
    # -1e300 * 1e300 is -inf < 100 in floats, but no finite number: not allowed
    assert {r[0] for r in conn.execute(f"SELECT id FROM p WHERE {where}", params)} == {"a"}


def test_the_select_list_is_never_empty():
    import sqlite3

    from policyd import Engine, compile_text
    from policyd.plans import to_sql, to_sql_columns

    engine = Engine(compile_text(DATED))
    denied = engine.plan({"principal": {"type": "User", "id": "u", "attrs": {"roles": []}},
                          "action": "read", "resource": {"type": "Post"}})
    assert denied.kind == "always_denied"
    select, params = to_sql_columns(denied, {"id": "id", "price": "price"})
    where, wparams = to_sql(denied, {"id": "id"})
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE p (id TEXT, price REAL)")
    assert conn.execute(f"SELECT {select} FROM p WHERE {where}", params + wparams).fetchall() \
        == []
    assert to_sql_columns(denied, {})[0] == "NULL AS id"


# ---- 7. an AuthZEN search decided and logged every entity, on the event loop ----------------

CROWD = """
principal User { roles: set<string> stored  team: string stored }
role viewer
resource Doc { owner: string stored  team: string stored  actions read }
policy docs for Doc {
  allow read when principal is viewer and principal.team == resource.team
  allow read when resource.owner == principal.id
  show *
}
"""


def _crowd(tmp_path, users: int, docs: int) -> Path:
    import json
    root = tmp_path / "crowd"
    root.mkdir()
    (root / "docs.policy").write_text(CROWD)
    with open(root / "users.data.jsonl", "w") as f:
        for i in range(users):
            f.write(json.dumps({"type": "User", "id": f"u{i:06d}", "attrs": {
                "roles": ["viewer"] if i % 3 == 0 else [], "team": f"t{i % 50}"}}) + "\n")
    with open(root / "docs.data.jsonl", "w") as f:
        for i in range(docs):
            f.write(json.dumps({"type": "Doc", "id": f"d{i:06d}", "attrs": {
                "owner": f"u{i % 1000:06d}", "team": f"t{i % 50}"}}) + "\n")
    return root


def test_searches_are_one_record_off_the_event_loop_and_pages_walk_once(tmp_path):
    import json
    import threading

    import httpx

    from .test_authzen import _post, _serve

    root = _crowd(tmp_path, 200_002, 3000)
    server, url = _serve(tmp_path, root)
    log = tmp_path / "decisions.jsonl"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            body = {"subject": {"type": "User"}, "action": {"name": "read"},
                    "resource": {"type": "Doc", "id": "d000007"}, "page": {"limit": 1}}
            before = len(log.read_text().splitlines()) if log.exists() else 0
            done, answers = threading.Event(), {}

            def search():
                answers["search"] = _post(client, "/access/v1/search/subject", body)
                done.set()

            thread = threading.Thread(target=search)
            thread.start()
            time.sleep(0.05)
            health = httpx.get(url + "/healthz", timeout=10)  # answered while it searches
            assert health.status_code == 200 and not done.is_set()
            thread.join()
            first = answers["search"].json()
            # u000007 owns d000007; viewers of team t7 (every 3rd user, i % 50 == 7)
            assert first["page"]["total"] == 1 + sum(
                1 for i in range(200_002) if i % 3 == 0 and i % 50 == 7 and i != 7)
            assert [r["id"] for r in first["results"]] == ["u000007"]
            time.sleep(0.3)
            records = log.read_text().splitlines()[before:]
            assert len(records) == 1 and json.loads(records[0])["search"] == "subject"

            # a resource search is a plan over the data; walk every page of 7
            walk = {"subject": {"type": "User", "id": "u000003"},
                    "action": {"name": "read"}, "resource": {"type": "Doc"},
                    "page": {"limit": 7}}
            seen, token = [], None
            while True:
                if token:
                    walk["page"] = {"limit": 7, "token": token}
                page = _post(client, "/access/v1/search/resource", walk).json()
                seen += [r["id"] for r in page["results"]]
                token = page["page"]["next_token"]
                if not token:
                    break
            expected = [f"d{i:06d}" for i in range(3000) if i % 50 == 3 or i % 1000 == 3]
            assert seen == expected and page["page"]["total"] == len(expected)
    finally:
        server.terminate()
