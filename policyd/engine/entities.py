"""Entity data: the stored attributes of principals and resources, read from `*.data.json`
(a list of entries) and `*.data.jsonl` (one entry a line) files, checked when the set is
compiled, and looked up by (type, id) at decision time, one dict lookup per entity.

An entry is `{"type": T, "id": ID, "attrs": {...}}`, with `"kind": "principal"` or
`"resource"` where a principal type and a resource type share the name T. Every problem
is a diagnostic with the file and line of the entry.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from ..language.diagnostics import Diagnostic, did_you_mean
from ..language.nodes import Span
from ..language.schema import EntitySchema, Schema
from .validation import Explainer

_KEYS = {"type", "id", "attrs", "kind"}


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str | None
    type: str
    id: str
    attrs: dict
    where: Span


@dataclass(frozen=True)
class Tables:
    """One entity type's data: id -> stored attributes (converted), and the stored
    attributes every entity must have. Searches read it through `ids` and `index`, built
    on first use and kept with this data version (a reload brings new Tables)."""

    rows: dict[str, dict]
    required: tuple[str, ...]
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def ids(self) -> list[str]:
        """Every id, in order."""
        found = self.cache.get("ids")
        if found is None:
            found = self.cache["ids"] = sorted(self.rows)
        return found

    def index(self, attr: str) -> dict:
        """Value -> the ids, in order, of the entities whose `attr` holds it (scalar
        attributes; an entity without it is in no list)."""
        key = ("index", attr)
        found = self.cache.get(key)
        if found is None:
            groups: dict = {}
            rows = self.rows
            for eid in self.ids():
                value = rows[eid].get(attr)
                if type(value) in (str, int, float, bool):
                    groups.setdefault(value, []).append(eid)
            found = self.cache[key] = groups
        return found


@dataclass(frozen=True)
class EntityData:
    principals: dict[str, Tables] = field(default_factory=dict)
    resources: dict[str, Tables] = field(default_factory=dict)

    def attach(self, ptype: str, pid: str, P: dict, rtype: str, rid: str, R):
        """(P, R) with their stored attributes, or the `missing_data:...` reason."""
        t = self.principals.get(ptype)
        if t is not None:
            P = _merged(P, t.rows.get(pid), t.required)
            if type(P) is str:
                return "missing_data:principal." + P
        if R is not None:
            t = self.resources.get(rtype)
            if t is not None:
                R = _merged(R, t.rows.get(rid), t.required)
                if type(R) is str:
                    return "missing_data:resource." + R
        return P, R

    def count(self) -> int:
        return sum(len(t.rows) for t in (*self.principals.values(), *self.resources.values()))


def _merged(attrs: dict, stored: dict | None, required: tuple[str, ...]):
    if stored is None:
        return required[0] if required else attrs
    for name in required:
        if name not in stored:
            return name
    return {**attrs, **stored}


def _line_of(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def parse_file(path: str, text: str, report: Callable[[Diagnostic], None]) -> list[tuple]:
    """(value, Span) per entry; a JSON syntax error is one diagnostic for the file."""
    out = []
    if path.endswith(".jsonl"):
        for number, line in enumerate(text.split("\n"), 1):  # not splitlines: see _lines
            if line.strip():
                try:
                    out.append((json.loads(line), Span(path, number, 1)))
                except (json.JSONDecodeError, RecursionError, ValueError) as exc:
                    report(Diagnostic.at(Span(path, number, getattr(exc, "colno", 1)), "E501",
                                         f"not valid JSON: {getattr(exc, 'msg', exc)}"))
        return out
    decoder, pos = json.JSONDecoder(), 0
    try:
        pos = len(text) - len(text.lstrip())
        if text[pos:pos + 1] != "[":
            report(Diagnostic.at(Span(path, *_line_of(text, pos)), "E501", "a .data.json file "
                                 "holds a JSON list of entries", "write [{\"type\": ..., "
                                 "\"id\": ..., \"attrs\": {...}}, ...], or use .data.jsonl"))
            return []
        pos += 1
        while True:
            while text[pos:pos + 1].isspace():
                pos += 1
            if text[pos:pos + 1] == "]":
                return out
            value, end = decoder.raw_decode(text, pos)
            out.append((value, Span(path, *_line_of(text, pos))))
            pos = end
            while text[pos:pos + 1].isspace():
                pos += 1
            if text[pos:pos + 1] == ",":
                pos += 1
            elif text[pos:pos + 1] != "]":
                raise json.JSONDecodeError("expected `,` or `]`", text, pos)
    except json.JSONDecodeError as exc:
        report(Diagnostic.at(Span(path, exc.lineno, exc.colno), "E501",
                             f"not valid JSON: {exc.msg}"))
    except RecursionError:
        report(Diagnostic.at(Span(path, *_line_of(text, pos)), "E501", "nested too deeply"))
    return out


def entry_of(value, where: Span, report) -> Entry | None:
    if not isinstance(value, dict):
        report(Diagnostic.at(where, "E502", "an entry is an object with type, id and attrs"))
        return None
    extra = sorted(set(value) - _KEYS)
    kind = value.get("kind", "principal")
    if extra or not isinstance(value.get("type"), str) or not isinstance(value.get("id"), str) \
            or not isinstance(value.get("attrs", {}), dict) \
            or type(kind) is not str or kind not in ("principal", "resource") \
            or not value.get("id"):
        what = f"`{extra[0]}` is not part of an entry" if extra else \
            "an entry needs a string `type`, a non-empty string `id` and an `attrs` object " \
            "(and `kind`, when given, is \"principal\" or \"resource\")"
        report(Diagnostic.at(where, "E502", what))
        return None
    return Entry(value.get("kind"), value["type"], value["id"], value.get("attrs", {}), where)


CHUNK = 20_000  # .jsonl lines decoded at once: fast, and the decoded chunk is let go


def _nth_line(path: str, part: list[str], start: int, i: int) -> Span:
    """The line of the i-th entry of a chunk (blank lines hold none)."""
    seen = -1
    for n, line in enumerate(part):
        if line.strip():
            seen += 1
            if seen == i:
                return Span(path, start + n + 1, 1)
    return Span(path, start + 1, 1)


def _lines(text: str) -> list[str]:
    """The lines of a .jsonl file: split on "\n" only. str.splitlines() also splits at
    U+2028, U+2029, U+0085 and others, which JSON strings may hold unescaped: the
    halves would be joined back with a comma (`"eng\u2028"` read as `"eng,"`)."""
    lines = text.split("\n")
    return lines[:-1] if lines and not lines[-1] else lines


def _chunks(path: str, text: str, report):
    """(entries, where) pieces of a file, each decoded in one C-speed parse; `where(i)`
    finds entry i's line when it has a problem. A syntax error is reported with its line
    and, in .jsonl, the other lines still count."""
    if path.endswith(".jsonl"):
        lines = _lines(text)
        for start in range(0, len(lines), CHUNK):
            part = lines[start:start + CHUNK]
            try:
                try:  # blank lines are rare: join first, filter only when needed
                    values = json.loads("[" + ",".join(part) + "]")
                except json.JSONDecodeError:
                    values = json.loads("[" + ",".join(x for x in part if x.strip()) + "]")
            except (json.JSONDecodeError, RecursionError, ValueError):
                good = parse_file(path, "\n" * start + "\n".join(part), report)
                yield [v for v, _ in good], lambda i, good=good: good[i][1]
                continue
            yield values, lambda i, part=part, start=start: _nth_line(path, part, start, i)
        return
    try:
        values = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        values = None
    if not isinstance(values, list):
        parse_file(path, text, report)
        return
    spans: list = []

    def where(i: int) -> Span:
        if not spans:
            spans.extend(span for _, span in parse_file(path, text, lambda d: None))
        return spans[i]

    yield values, where


def build(data: dict[str, str], schema: Schema, validators: dict,
          max_bytes: int) -> tuple[EntityData, list[Diagnostic]]:
    """Check every entry against the stored attributes it may set; the lookup tables.
    Well-formed entries take a short path; anything else is explained with its line."""
    diags: list[Diagnostic] = []
    # the data validators pool as they check: equal sets become one shared tuple, map
    # keys one string, so a million users with the same few roles hold them once
    explain, pool = Explainer(schema, max_bytes), {}.setdefault
    targets: dict[tuple, tuple[str, str] | None] = {}  # (kind or None, type) -> table key
    for kind, declared in (("principal", schema.principals), ("resource", schema.resources)):
        for name in declared:
            targets[(kind, name)] = (kind, name)
            targets[(None, name)] = None if (None, name) in targets else (kind, name)
    rows: dict[tuple[str, str], dict] = {}  # keyed by strings: schemas hash slowly
    check = {key: validators.get(f"data:{key[0]}:{key[1]}") for key in targets.values() if key}
    collecting = gc.isenabled()
    gc.disable()  # millions of new containers: the cycle collector would rescan them all
    try:
        _load(data, schema, validators, explain, pool, targets, check, rows, diags)
    finally:
        if collecting:
            gc.enable()
    tables = EntityData(*({name: Tables(rows.get((kind, name), {}), tuple(
        a.name for a in s.stored if not a.optional)) for name, s in declared.items() if s.stored}
        for kind, declared in (("principal", schema.principals),
                               ("resource", schema.resources))))
    return tables, diags


def _load(data, schema, validators, explain, pool, targets, check, rows, diags) -> None:
    slots: dict = {}  # (kind or None, type) -> (validator, its table): one lookup an entry
    for lookup, key in targets.items():
        if key is not None and check.get(key) is not None:
            slots[lookup] = (check[key], rows.setdefault(key, {}))
    for path, text in data.items():
        for values, where in _chunks(path, text, diags.append):
            for index, value in enumerate(values):
                # the short path: a well-formed entry of a known type whose attributes check
                if type(value) is dict and len(value) == 2 + ("attrs" in value) + \
                        ("kind" in value) and type(value.get("type")) is str and \
                        type(value.get("kind", "")) is str and "id" in value:
                    slot = slots.get((value.get("kind"), value["type"]))
                    eid, attrs = value["id"], value.get("attrs", {})
                    if slot is not None and type(eid) is str and eid and type(attrs) is dict \
                            and eid not in slot[1]:
                        try:
                            slot[1][eid] = slot[0](attrs, pool)
                            continue
                        except Exception:
                            pass
                _explain(value, where(index), schema, validators, explain, rows, diags.append)


def _explain(value, where: Span, schema: Schema, validators, explain, rows, report) -> None:
    """The slow path: say exactly what is wrong with one entry."""
    entry = entry_of(value, where, report)
    target = entry and _target(entry, schema, report)
    if target is None:
        return
    if entry.id in rows.get((target.kind, target.name), {}):
        report(Diagnostic.at(where, "E506", f"{target.kind} {target.name} {entry.id!r} is "
                             "given twice"))
        return
    _attrs_problem(entry, target, validators, explain, report)


def _target(entry: Entry, schema: Schema, report) -> EntitySchema | None:
    kinds = [entry.kind] if entry.kind else ["principal", "resource"]
    found = [s for k in kinds if (s := schema.entity(k, entry.type)) is not None]
    if len(found) == 1:
        return found[0]
    if found:
        report(Diagnostic.at(entry.where, "E504", f"`{entry.type}` is both a principal and a "
                             "resource type", 'say which with "kind": "principal" or '
                             '"kind": "resource"'))
        return None
    names = [*schema.principals, *schema.resources]
    report(Diagnostic.at(entry.where, "E503", f"unknown {entry.kind or 'entity'} type "
                         f"`{entry.type}`", did_you_mean(entry.type, names)))
    return None


def _attrs_problem(entry: Entry, schema: EntitySchema, validators: dict, explain: Explainer,
                   report) -> None:
    """Why an entry's attributes do not check (E505)."""
    validator = validators.get(f"data:{schema.kind}:{schema.name}")
    if validator is None:
        report(Diagnostic.at(entry.where, "E505", f"{schema.kind} {schema.name} declares no "
                             "stored attributes, so entity data cannot set any",
                             "mark the attributes that come from data `stored`"))
        return
    try:
        validator(entry.attrs, {}.setdefault)
    except Exception:
        where = f"{schema.kind} {schema.name} {entry.id!r}: attrs"
        problem = explain.attrs(where, schema, entry.attrs, stored=True) or \
            f"{where} cannot be checked"
        report(Diagnostic.at(entry.where, "E505", problem,
                             "entity data sets only attributes declared `stored`"
                             if "not a stored" in problem else None))
