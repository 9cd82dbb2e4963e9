"""Query plans against real SQLite and PostgreSQL on adversarial rows (issue #28, item 5):
NaN and infinities, numbers whose arithmetic overflows, integers past 2**53, NUL inside
strings, JSON objects with a key twice, malformed JSON, times stored every way the
column contract allows. Rows are inserted, read back as a service reads them, and
decided by `check`; the plan's SQL must select exactly the rows `check` allows, mask
exactly as it shows, or be PlanUntranslatable where no exact form exists. A row whose
only value outside the contract is in a column the plan does not read is the database's
business and is left out of the comparison.

ADV_EXAMPLES=800 runs more examples; ADV_DEBUG=FILE appends each disagreement there in
full (pytest shortens assertion messages)."""

from __future__ import annotations

import json
import math
import os
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd import Engine, RequestError, compile_text
from policyd.plans import PlanUntranslatable, to_sql, to_sql_columns
from policyd.values import format_time, parse_time

from .conftest import Unlimited
from .databases import INITDB, PostgresServer

POLICY = """
principal User { roles: set<string>  tenant: string  limit: number }
context { time: time }
role viewer
resource Item {
  tenant: string
  price: number
  qty: number
  name: string
  scores: map<string, number>
  labels: map<string, string>
  nums: set<number>
  created: time
  note?: string
  actions read, list, view
}
policy items for Item {
  fence: deny * when principal.tenant != resource.tenant
  cheap: allow read when resource.price * resource.qty < principal.limit
  huge: deny read when resource.price + resource.qty > 1000000000 and resource.name == "x"
  named: allow list, view when resource.name like "a*b" or len(resource.name) == 3
  scored: allow list, view when "x" in resource.scores and resource.scores["x"] > 5
  labelled: allow view when "k" in resource.labels and resource.labels["k"] == "v"
  counted: allow list when len(resource.scores) >= 2 or resource.nums contains 2
  dated: allow view when resource.created > time("2025-01-01T00:00:00Z")
    and hour(resource.created) < 11
  weekend: allow list when weekday(resource.created) >= 6
  priced: allow view when resource.price > 5
  show price, qty when resource.price - resource.qty > 0
  show name, scores, note when resource has note or resource.price > 1
}
"""
NOW = "2026-11-22T10:00:00Z"
NUMBERS = [0, 1, 2.5, 3, 5, 6, -4, 1e200, -1e200, 1e308, 1.7976931348623157e308, 2 ** 53,
           1e-200, 5e-324, math.inf, -math.inf, math.nan]
NAMES = ["ab", "aXb", "a\x00b", "\x00", "abc", "a", "x", "\u00e4\x00b", "\U0001f600b", "",
         "a\x00\x00b"]
SCORES = ['{"x": 6}', '{"x": 1, "x": 9}', '{"x": 9, "x": 1}', '{"x": 1e400}', '{"x": 1e-400}',
          '{"x": 9007199254740993}', '{"x": "s"}', '{"x":', "{}", '{"x": 6, "y": 1}', "[1]",
          '{"x": 6.5, "z": 2, "z": 3}']
LABELS = ['{"k": "v"}', '{"k": "v", "k": "w"}', '{"k": "w", "k": "v"}', '{"k": 1}', "{}",
          '{"k": "v\\u0000"}', "nope"]
NUMS = ["[2]", "[1, 3]", "[2, 2.0]", "[1e400]", "[9007199254740993]", '["2"]', "[]", "[2,"]
INSTANTS = ["2026-11-22T10:59:59.999999Z", "2026-11-22T11:00:00Z", "2026-11-28T09:00:00Z",
            "1969-12-31T23:59:59.5Z", "2024-12-31T23:59:59.999999Z", "2025-01-01T00:00:00Z",
            "2025-01-01T00:00:00.000001Z", "2026-11-29T23:59:59.999999Z"]
EPOCH_OUT_OF_RANGE = 1e13  # past year 9999: no RFC 3339 text names it
SQLITE_TIMES = {"epoch": "created_epoch", "iso_text": "created_iso",
                "django_text": "created_django"}
PG_TIMES = {"timestamptz": "created_tz", "timestamp": "created_naive",
            "epoch": "created_epoch"}
TOP = ["tenant", "price", "qty", "name", "scores", "labels", "nums", "note"]

if INITDB is None and os.environ.get("CI"):
    raise RuntimeError("PostgreSQL (initdb) is required in CI")


def _instant(text: str) -> datetime:
    return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=round(
        parse_time(text) * 1_000_000))


@st.composite
def rows(draw):
    out = []
    for i in range(draw(st.integers(4, 10))):
        when = draw(st.sampled_from(INSTANTS + ["out"]))
        out.append({
            "id": f"r{i}", "tenant": draw(st.sampled_from(["t1", "t2"])),
            "price": draw(st.sampled_from(NUMBERS)), "qty": draw(st.sampled_from(NUMBERS)),
            "name": draw(st.sampled_from(NAMES)), "scores": draw(st.sampled_from(SCORES)),
            "labels": draw(st.sampled_from(LABELS)), "nums": draw(st.sampled_from(NUMS)),
            "when": when, "note": draw(st.sampled_from([None, "n", "n\x00"]))})
    return out


# ---- the databases, and the rows as a service reads them back -----------------------


def _sqlite_store(conn, drawn: list[dict]) -> None:
    conn.execute("DELETE FROM adv")
    for r in drawn:
        at = None if r["when"] == "out" else _instant(r["when"])
        naive = at.replace(tzinfo=None) if at else None
        conn.execute("INSERT INTO adv VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (
            r["id"], r["tenant"], r["price"], r["qty"], r["name"], r["scores"], r["labels"],
            r["nums"], EPOCH_OUT_OF_RANGE if at is None else parse_time(r["when"]),
            naive.strftime("%Y-%m-%d %H:%M:%S.%f") if naive else "10000-01-01 00:00:00.000000",
            str(naive) if naive else "10000-01-01 00:00:00", r["note"]))


def _pg_store(conn, drawn: list[dict]) -> None:
    conn.execute("DELETE FROM adv")
    for r in drawn:
        def text(v):  # PostgreSQL text holds no NUL: such a row is stored without it
            return None if v is None else v.replace("\x00", "")

        def jsonb(v):  # and jsonb only valid JSON with no NUL escape
            try:
                json.loads(v)
            except ValueError:
                return "{}"
            return v.replace("\\u0000", "")

        nums = json.loads(r["nums"]) if r["nums"] not in ("[2,",) else []
        array = [math.nan if isinstance(x, str) else float(min(x, 1e308)) if x != 1e400
                 else math.inf for x in nums] if isinstance(nums, list) else []
        at = _instant(r["when"]) if r["when"] != "out" else None
        conn.execute("INSERT INTO adv VALUES (%s,%s,%s,%s,%s,%s::jsonb,%s::jsonb,%s,%s,%s,"
                     "%s,%s)", (
                         r["id"], r["tenant"], r["price"], r["qty"], text(r["name"]),
                         jsonb(r["scores"]), jsonb(r["labels"]), array,
                         at or datetime(9999, 12, 31, tzinfo=UTC),
                         (at or datetime(9999, 12, 31, tzinfo=UTC)).replace(tzinfo=None),
                         parse_time(r["when"]) if at else EPOCH_OUT_OF_RANGE,
                         text(r["note"])))


def _read(conn, time_column: str, pg: bool) -> dict[str, dict]:
    """Each row as the service would send it to `check`: values as the driver returns
    them, JSON text parsed by Python, times formatted as RFC 3339; a value that cannot
    be read at all becomes a marker `check` refuses."""
    cur = conn.execute(f"SELECT id, {', '.join(TOP)}, {time_column} FROM adv")
    out = {}
    for row in cur.fetchall():
        rid, values = row[0], dict(zip(TOP + ["created"], row[1:], strict=True))
        attrs = {}
        for name, v in values.items():
            if name == "note" and v is None:
                continue
            if name in ("scores", "labels", "nums") and isinstance(v, str):
                if "\\u0000" in v:  # the SQLite contract: no escaped NUL in JSON text
                    attrs[name] = "<outside the SQLite column contract>"
                    continue
                try:
                    v = json.loads(v)
                except ValueError:
                    v = "<malformed JSON>"
            if name == "created":
                v = _time_text(v)
            attrs[name] = v
        out[rid] = attrs
    return out


def _time_text(v) -> str:
    if isinstance(v, datetime):
        return v.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if v.tzinfo is None \
            else v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v).replace(tzinfo=UTC).isoformat().replace(
                "+00:00", "Z")
        except ValueError:
            return v
    try:
        return format_time(v)
    except (ValueError, OverflowError, OSError):
        return "<out of range>"


# ---- the comparison ---------------------------------------------------------------------


def _expected(engine, principal, action, attrs_by_id, read: frozenset) -> dict:
    """id -> visible fields (allowed), None (refused or denied); ids left out whose only
    problem is a column the plan does not read."""
    out = {}
    for rid, attrs in attrs_by_id.items():
        request = {"principal": principal, "action": action,
                   "resource": {"type": "Item", "id": rid, "attrs": attrs},
                   "context": {"time": NOW}}
        try:
            d = engine.check(request)
        except RequestError as exc:
            attr = str(exc).split(".")[2].split(":")[0].split(" ")[0] \
                if str(exc).startswith("resource.attrs.") else ""
            if attr in read:
                out[rid] = None
            continue
        out[rid] = list(d.visible_fields) if d.allowed else None
    return out


def _check(conn, pg: bool, plan, expected: dict, columns: dict, kind: str,
           rows: dict) -> None:
    mark = "%s" if pg else "?"
    try:
        where, params = to_sql(plan, columns, "postgresql" if pg else "sqlite",
                               times={"created": kind})
    except PlanUntranslatable as exc:
        assert pg and "arithmetic" in str(exc), exc  # PostgreSQL's float8 raises instead
        return
    selected = {r[0] for r in conn.execute(f"SELECT id FROM adv WHERE {where}",
                                           params).fetchall()}
    got = {rid for rid in selected if rid in expected}
    want = {rid for rid, v in expected.items() if v is not None}
    if got != want and os.environ.get("ADV_DEBUG"):
        with open(os.environ["ADV_DEBUG"], "a") as f:
            f.write(repr((kind, plan.action, got ^ want, {r: rows[r] for r in got ^ want},
                          where, params, plan.residual)) + "\n")
    assert got == want, (kind, plan.action, got ^ want, {r: rows[r] for r in got ^ want},
                         where, params)
    try:
        select, sparams = to_sql_columns(plan, columns, "postgresql" if pg else "sqlite",
                                         times={"created": kind})
    except PlanUntranslatable as exc:
        assert pg and "arithmetic" in str(exc), exc
        return
    cur = conn.execute(f"SELECT id AS row_id, {select} FROM adv WHERE {where}",
                       sparams + params)
    names = [c[0] for c in cur.description][1:]
    for row in cur.fetchall():
        if row[0] not in expected:
            continue
        shown = [n for n, v in zip(names, row[1:], strict=True) if v is not None]
        want = [f for f in expected[row[0]] if f in columns and f in shown or f == "id"]
        assert [f for f in shown if f != "note"] == [f for f in want if f != "note"], \
            (row, expected[row[0]], mark)


COLUMNS = {"id": "id", **{n: n for n in TOP}}


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory):
    conn = sqlite3.connect(str(tmp_path_factory.mktemp("adv") / "adv.sqlite"))
    conn.execute("CREATE TABLE adv (id TEXT PRIMARY KEY, tenant TEXT, price REAL, qty REAL, "
                 "name TEXT, scores TEXT, labels TEXT, nums TEXT, created_epoch REAL, "
                 "created_iso TEXT, created_django TEXT, note TEXT)")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def pg_db():
    if INITDB is None:
        pytest.skip("PostgreSQL is not installed (no initdb): its adversarial cases are "
                    "skipped; install Debian's postgresql to run them")
    import psycopg
    server = PostgresServer().start()
    conn = psycopg.connect(server.dsn, autocommit=True)
    conn.execute("CREATE TABLE adv (id text PRIMARY KEY, tenant text, price float8, "
                 "qty float8, name text, scores jsonb, labels jsonb, nums float8[], "
                 "created_tz timestamptz, created_naive timestamp, created_epoch float8, "
                 "note text)")
    try:
        yield conn
    finally:
        conn.close()
        server.stop()


@pytest.fixture(scope="module")
def engine():
    return Engine(compile_text(POLICY), clock=lambda: parse_time(NOW), rate_store=Unlimited())


PRINCIPALS = st.fixed_dictionaries({
    "type": st.just("User"), "id": st.sampled_from(["u1", "u2"]),
    "attrs": st.fixed_dictionaries({
        "roles": st.just(["viewer"]), "tenant": st.sampled_from(["t1", "t2"]),
        "limit": st.sampled_from([10, 1e300, -1, 2 ** 53])})})


def _run(conn, pg: bool, engine, drawn, principal, times: dict) -> None:
    (_pg_store if pg else _sqlite_store)(conn, drawn)
    for kind, time_column in times.items():
        attrs = _read(conn, time_column, pg)
        columns = {**COLUMNS, "created": time_column}
        for action in ("read", "list", "view"):
            plan = engine.plan({"principal": principal, "action": action,
                                "resource": {"type": "Item"}, "context": {"time": NOW}})
            read = frozenset(plan.attributes)
            _check(conn, pg, plan, _expected(engine, principal, action, attrs, read),
                   columns, kind, attrs)


def test_sqlite_selects_exactly_what_check_allows_on_adversarial_rows(sqlite_db, engine):
    @settings(max_examples=int(os.environ.get("ADV_EXAMPLES", 60)), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(drawn=rows(), principal=PRINCIPALS)
    def run(drawn, principal):
        _run(sqlite_db, False, engine, drawn, principal, SQLITE_TIMES)

    run()


def test_postgresql_selects_exactly_what_check_allows_on_adversarial_rows(pg_db, engine):
    @settings(max_examples=int(os.environ.get("ADV_EXAMPLES", 40)), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(drawn=rows(), principal=PRINCIPALS)
    def run(drawn, principal):
        _run(pg_db, True, engine, drawn, principal, PG_TIMES)

    run()
