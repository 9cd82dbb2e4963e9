"""Operators whose exact SQL form differs from the obvious one, per dialect.

- SQLite's text functions (`length`, `GLOB`, `substr`) stop at a NUL character, where
  the policy's strings go on: for a string holding one, `like` and `len` are computed
  on its UTF-8 bytes (a BLOB), which matching on code points equals, since UTF-8 is
  self-synchronising.
- SQLite's doubles overflow to an infinity, where the policy's arithmetic is unknown:
  an infinite result becomes NULL, SQL's unknown, which `and`, `or` and `not` then
  combine as the policy's three-valued logic does.
- `hour` and `weekday` of epoch seconds are floor divisions in integers (SQLite's
  date functions round an instant to the millisecond first).
- Empty middle parts of a glob (`a**b`) match anywhere, so they are left out.
"""

from __future__ import annotations

INF = "9e999"  # SQLite reads this as an infinity


def sqlite_arith(sign: str, a: str, b: str) -> str:
    """`a sign b` in doubles, NULL (unknown) when not finite (SQLite makes NaN NULL
    itself). CAST AS REAL: an INTEGER column would compute in 64-bit integers."""
    return f"nullif(nullif((CAST({a} AS REAL) {sign} {b}), {INF}), -{INF})"


def sqlite_length(x: str) -> str:
    """The number of code points of a text, NUL characters included."""
    blob = f"CAST({x} AS BLOB)"
    # code points = bytes - UTF-8 continuation bytes (10xxxxxx), counted segment by
    # segment between NULs, where length() can count the code points of each
    by_segments = (
        f"(WITH RECURSIVE _s(rest, n) AS (SELECT {blob}, 0 UNION ALL SELECT "
        "CASE WHEN instr(rest, X'00') = 0 THEN NULL ELSE substr(rest, instr(rest, X'00') + 1) "
        "END, n + CASE WHEN instr(rest, X'00') = 0 THEN length(CAST(rest AS TEXT)) ELSE "
        "length(CAST(substr(rest, 1, instr(rest, X'00') - 1) AS TEXT)) + 1 END FROM _s "
        "WHERE rest IS NOT NULL) SELECT max(n) FROM _s)")
    return f"(CASE WHEN instr({blob}, X'00') = 0 THEN length({x}) ELSE {by_segments} END)"


def sqlite_like(x: str, parts: list[str], param) -> str:
    """`x like "a*b*c"` (parts ["a", "b", "c"]): GLOB for a text without NUL, else the
    glob matched on bytes: the head, the tail, and each middle part found in order
    after the last (greedy leftmost, as the runtime matches)."""
    escaped = [p.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]") for p in parts]
    glob = f"({x} GLOB {param('*'.join(escaped))})"
    blob = f"CAST({x} AS BLOB)"
    return f"(CASE WHEN instr({blob}, X'00') = 0 THEN {glob} ELSE " \
        f"{_bytes_like(blob, parts, param)} END)"


def _bytes_like(blob: str, parts: list[str], param) -> str:
    def b(text: str) -> str:
        return f"CAST({param(text)} AS BLOB)"

    def size(text: str) -> int:
        return len(text.encode("utf-8", "surrogatepass"))

    if len(parts) == 1:
        return f"({blob} = {b(parts[0])})"
    head, tail, middles = parts[0], parts[-1], parts[1:-1]
    n = f"length({blob})"
    tests = [f"{n} >= {size(head) + size(tail)}"]
    if head:
        tests.append(f"substr({blob}, 1, {size(head)}) = {b(head)}")
    if tail:
        tests.append(f"substr({blob}, {n} - {size(tail)} + 1) = {b(tail)}")
    if middles:  # p: the byte after the last part found; e: the first byte of the tail
        end = f"({n} - {size(tail)} + 1)"
        pos = f"{size(head) + 1}"
        for k, part in enumerate(middles):
            found = f"instr(substr({blob}, {pos}, {end} - ({pos})), {b(part)})"
            if k == len(middles) - 1:
                tests.append(f"{found} > 0")
            else:
                pos = f"(CASE WHEN {found} = 0 THEN {end} + 1 ELSE {pos} + {found} - 1 + " \
                    f"{size(part)} END)"
        # a middle part missed leaves `pos` past the end, where instr finds nothing
    return "(" + " AND ".join(tests) + ")"


def sqlite_clock(op: str, t: str) -> str:
    """`hour(t)` (0-23) or `weekday(t)` (1 = Monday) of an ISO text, read by strftime
    without the fraction (which SQLite would round to the millisecond: 23:59:59.9999 on a
    Sunday would be Monday)."""
    whole = f"substr({t}, 1, 19)"
    if op == "hour":
        return f"CAST(strftime('%H', {whole}) AS INTEGER)"
    return f"((CAST(strftime('%w', {whole}) AS INTEGER) + 6) % 7 + 1)"


def epoch_clock(op: str, s: str) -> str:
    """`hour` or `weekday` of epoch seconds, given `s`, the floor of the seconds as an
    integer: floor divisions in integers, right before 1970 too, as the runtime's
    `t // 3600 % 24` (SQLite's date functions first round an instant to the millisecond)."""
    if op == "hour":
        return f"((({s} - (({s} % 3600) + 3600) % 3600) / 3600 % 24 + 24) % 24)"
    days = f"(({s} - (({s} % 86400) + 86400) % 86400) / 86400)"
    return f"((({days} + 3) % 7 + 7) % 7 + 1)"
