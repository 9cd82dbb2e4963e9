"""The column contract of query plans: how each declared type is stored in each dialect
(docs/plans.md, "Column contract"), the time storage a column has, and the guard that
keeps a row whose value breaks the contract out of a plan's result, since `check`
refuses such a value (NaN, an infinity, an integer past 2**53, malformed JSON) instead
of deciding it.

Times are stored four ways, chosen by the caller (`times=`) or, through an ORM, by the
column's own type; a time attribute on a column of any other type is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ..values import MAX_INT

EPOCH = "epoch"  # REAL / double precision: seconds since 1970-01-01 UTC
TIMESTAMPTZ = "timestamptz"  # PostgreSQL timestamp with time zone
TIMESTAMP = "timestamp"  # PostgreSQL timestamp without time zone, holding UTC
ISO_TEXT = "iso_text"  # SQLite text 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy's DateTime)
DJANGO_TEXT = "django_text"  # SQLite text 'YYYY-MM-DD HH:MM:SS[.ffffff]' (Django's)
TIME_STORAGE = {"sqlite": (EPOCH, ISO_TEXT, DJANGO_TEXT), "postgresql": (EPOCH, TIMESTAMPTZ,
                                                                           TIMESTAMP)}
DEFAULT_TIME = {"sqlite": EPOCH, "postgresql": TIMESTAMPTZ}  # without an ORM to ask

MAX_FLOAT = 1.7976931348623157e308
FIRST, LAST = -62135596800, 253402300800  # 0001-01-01 and 10000-01-01 in epoch seconds
# a decimal rounds to an infinite double from 2**1024 - 2**970 up, and to zero up to
# 2**-1075 (the tie rounds to even, zero): PostgreSQL raises on both when casting
OVERFLOW = Decimal(2 ** 1024 - 2 ** 970)
UNDERFLOW = Decimal(5 ** 1075).scaleb(-1075)  # 2**-1075, exactly


def _number_ok(col: str, pg: bool) -> str:
    """A finite double, or (SQLite, where an INTEGER stays one) an integer within 2**53."""
    if pg:
        return f"{col} BETWEEN {-MAX_FLOAT!r} AND {MAX_FLOAT!r}"
    return f"typeof({col}) IN ('integer', 'real') AND abs({col}) <= {MAX_FLOAT!r} AND " \
        f"(typeof({col}) = 'real' OR abs({col}) <= {MAX_INT})"


def _json_ok(value: str, kind: str, t: str) -> str | None:
    """A SQLite JSON element (`value`, its json_each `kind`) fits type `t`; None when
    only its being JSON can be told (a record)."""
    if t == "string":
        return f"{kind} = 'text'"
    if t == "number":
        return f"{kind} IN ('integer', 'real') AND abs({value}) <= {MAX_FLOAT!r} AND " \
            f"({kind} = 'real' OR abs({value}) <= {MAX_INT})"
    if t == "bool":
        return f"{kind} IN ('true', 'false')"
    if t.startswith("set<"):
        inner = _json_ok("_h.value", "_h.type", t[4:-1])
        every = f" AND NOT EXISTS (SELECT 1 FROM json_each({value}) AS _h WHERE NOT " \
            f"({inner}))" if inner else ""
        return f"{kind} = 'array'{every}"
    return None


def _jsonb_ok(value: str, t: str, param) -> str | None:
    """A jsonb value fits type `t` as Python's JSON reads it (no '.' in jsonb's text
    means an integer, bounded by 2**53; a decimal must not round to an infinity)."""
    if t == "string":
        return f"jsonb_typeof({value}) = 'string'"
    if t == "number":
        return f"(CASE WHEN jsonb_typeof({value}) <> 'number' THEN false WHEN strpos(" \
            f"{value}::text, '.') = 0 THEN abs({value}::numeric) <= {MAX_INT} ELSE " \
            f"abs({value}::numeric) < {param(OVERFLOW)} END)"
    if t == "bool":
        return f"jsonb_typeof({value}) = 'boolean'"
    if t.startswith("set<"):
        inner = _jsonb_ok("_h", t[4:-1], param)
        every = f" AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements({value}) AS _h " \
            f"WHERE NOT ({inner}))" if inner else ""
        return f"jsonb_typeof({value}) = 'array'{every}"
    return None


def guard(col: str, t: str, pg: bool, time_kind: str | None, param) -> str | None:
    """The contract of a column of declared type `t` holding a value (a NULL passes:
    absence is the plan's to test), as SQL; None when the column's own type says it all.
    `param(value)` binds a value (PostgreSQL's numeric bounds)."""
    if t == "number":
        return f"({col} IS NULL OR {_number_ok(col, pg)})"
    if t == "time":
        return _time_guard(col, pg, time_kind)
    if pg:
        if t == "set<number>":
            return f"({col} IS NULL OR NOT ('NaN' = ANY({col}) OR 'Infinity' = ANY({col}) " \
                f"OR '-Infinity' = ANY({col}) OR array_position({col}, NULL) IS NOT NULL))"
        if t.startswith("set<"):
            return f"({col} IS NULL OR array_position({col}, NULL) IS NULL)"
        if t.startswith("map<"):
            ok = _jsonb_ok("_g.value", t[len("map<string, "):-1], param)
            every = f" AND NOT EXISTS (SELECT 1 FROM jsonb_each({col}) AS _g WHERE NOT " \
                f"({ok}))" if ok else ""
            return f"({col} IS NULL OR jsonb_typeof({col}) = 'object'{every})"
        return None
    if t == "string":
        return f"({col} IS NULL OR typeof({col}) = 'text')"
    if t == "bool":
        return f"({col} IS NULL OR {col} IN (0, 1))"
    if t.startswith(("set<", "map<")):  # JSON text, well formed, of the declared shape
        shape, inner = ("array", t[4:-1]) if t.startswith("set<") else \
            ("object", t[len("map<string, "):-1])
        ok = _json_ok("_g.value", "_g.type", inner)
        every = f" AND NOT EXISTS (SELECT 1 FROM json_each({col}) AS _g WHERE NOT ({ok}))" \
            if ok else ""
        # SQLite's JSON functions cut a string at an escaped NUL ("v\u0000w" reads "v"):
        # text holding `\u0000` cannot be compared as the policy compares it
        nul = f" AND instr({col}, '\\u0000') = 0" if t != "set<number>" else ""
        return f"({col} IS NULL OR CASE WHEN json_valid({col}) THEN json_type({col}) = " \
            f"'{shape}'{every}{nul} ELSE false END)"
    return None


def _time_guard(col: str, pg: bool, kind: str | None) -> str | None:
    if kind == EPOCH:
        return f"({col} IS NULL OR {col} >= {FIRST} AND {col} < {LAST})"
    if kind in (TIMESTAMPTZ, TIMESTAMP) and pg:
        zone = "timestamptz" if kind == TIMESTAMPTZ else "timestamp"
        return f"({col} IS NULL OR {col} >= '0001-01-01T00:00:00Z'::{zone} AND " \
            f"{col} < '10000-01-01T00:00:00Z'::{zone})"
    if kind in (ISO_TEXT, DJANGO_TEXT) and not pg:  # a real date, written as the ORM writes
        stamp = "[0-9]" * 4 + "-" + "[0-9]" * 2 + "-" + "[0-9]" * 2 + " " + \
            ":".join(["[0-9]" * 2] * 3)
        fraction = "." + "[0-9]" * 6
        form = f"{col} GLOB '{stamp}{fraction}'" if kind == ISO_TEXT else \
            f"({col} GLOB '{stamp}' OR {col} GLOB '{stamp}{fraction}')"
        # strftime normalises an impossible date (02-30 becomes 03-02): it must not move
        return f"({col} IS NULL OR {form} AND strftime('%Y-%m-%d %H:%M:%S', {col}) = " \
            f"substr({col}, 1, 19))"
    return None


# ---- times as the column holds them -------------------------------------------------


def _us(t: float) -> int:
    """The microsecond an epoch float names (round-tripping what parse_time made)."""
    return round(t * 1_000_000)


def floor_us(t: float) -> int:
    """The last microsecond instant whose epoch float is at most `t`: the instant a row
    holds is exactly a microsecond (what parse_time of its text gives)."""
    u = _us(t)
    while u / 1_000_000 > t:
        u -= 1
    while (u + 1) / 1_000_000 <= t:
        u += 1
    return u


def ceil_us(t: float) -> int:
    """The first microsecond instant whose epoch float is at least `t`."""
    u = floor_us(t)
    return u if u / 1_000_000 == t else u + 1


def time_value(us: int, kind: str):
    """A microsecond instant as a parameter for a column of `kind`."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    if kind == EPOCH:
        return us / 1_000_000
    if kind == TIMESTAMPTZ:
        return dt
    if kind == TIMESTAMP:
        return dt.replace(tzinfo=None)
    naive = dt.replace(tzinfo=None)
    if kind == ISO_TEXT:
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f")
    return str(naive)  # Django's: the fraction only when it is not zero


def time_compare(op: str, t: float) -> tuple[str, int] | bool:
    """`instant OP t`, for an instant that is a whole microsecond, as (op', us): the same
    test against a microsecond bound; True or False when no instant or every one
    passes (a `t` between two microseconds equals none of them)."""
    lo, hi = floor_us(t), ceil_us(t)
    if op == "lt":
        return ("lt", hi)
    if op == "le":
        return ("le", lo)
    if op == "gt":
        return ("gt", lo)
    if op == "ge":
        return ("ge", hi)
    exact = lo == hi
    if op == "eq":
        return ("eq", lo) if exact else False
    return ("ne", lo) if exact else True


def orm_time_kind(dialect: str, kind: str, timezone: bool) -> str | None:
    """The storage of a time attribute's column from what its ORM type is: `number`
    (a float, decimal or integer type: epoch seconds), `datetime_sa` / `datetime_django`
    (each ORM's date-time type, with or without a time zone), or anything else (None:
    refused, the contract knows no other)."""
    if kind == "number":
        return EPOCH
    if dialect == "postgresql" and kind.startswith("datetime"):
        return TIMESTAMPTZ if timezone else TIMESTAMP
    return {"datetime_sa": ISO_TEXT, "datetime_django": DJANGO_TEXT}.get(kind)
