"""Entity data: the stored attributes of principals and resources, read from `*.data.json`
(a list of entries) and `*.data.jsonl` (one entry a line) files, checked when the set is
compiled, and looked up by (type, id) at decision time, one dict lookup per entity.

An entry is `{"type": T, "id": ID, "attrs": {...}}`, with `"kind": "principal"` or
`"resource"` where a principal type and a resource type share the name T. Every problem
is a diagnostic with the file and line of the entry.
"""

from __future__ import annotations

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
    attributes every entity must have."""

    rows: dict[str, dict]
    required: tuple[str, ...]


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
        for number, line in enumerate(text.splitlines(), 1):
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
    if extra or not isinstance(value.get("type"), str) or not isinstance(value.get("id"), str) \
            or not isinstance(value.get("attrs", {}), dict) \
            or value.get("kind", "principal") not in ("principal", "resource") \
            or not value.get("id"):
        what = f"`{extra[0]}` is not part of an entry" if extra else \
            "an entry needs a string `type`, a non-empty string `id` and an `attrs` object " \
            "(and `kind`, when given, is \"principal\" or \"resource\")"
        report(Diagnostic.at(where, "E502", what))
        return None
    return Entry(value.get("kind"), value["type"], value["id"], value.get("attrs", {}), where)


def build(data: dict[str, str], schema: Schema, validators: dict, max_bytes: int,
          now: Callable[[], float]) -> tuple[EntityData, list[Diagnostic]]:
    """Check every entry against the stored attributes it may set; the lookup tables."""
    diags: list[Diagnostic] = []
    rows: dict[tuple[str, str], dict[str, dict]] = {}
    first: dict[tuple, Span] = {}
    explain = Explainer(schema, max_bytes)
    for path, text in data.items():
        for value, where in parse_file(path, text, diags.append):
            entry = entry_of(value, where, diags.append)
            target = entry and _target(entry, schema, diags.append)
            if target is None:
                continue
            key = (target.kind, target.name, entry.id)
            if key in first:
                diags.append(Diagnostic.at(where, "E506", f"{target.kind} {target.name} "
                                           f"{entry.id!r} is given twice (first at "
                                           f"{first[key]})"))
                continue
            first[key] = where
            converted = _checked(entry, target, validators, explain, now, diags.append)
            if converted is not None:
                rows.setdefault((target.kind, target.name), {})[entry.id] = converted
    tables = EntityData(*({name: Tables(rows.get((kind, name), {}), tuple(
        a.name for a in s.stored if not a.optional)) for name, s in declared.items() if s.stored}
        for kind, declared in (("principal", schema.principals),
                               ("resource", schema.resources))))
    return tables, diags


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


def _checked(entry: Entry, schema: EntitySchema, validators: dict, explain: Explainer, now,
             report) -> dict | None:
    validator = validators.get(f"data:{schema.kind}:{schema.name}")
    try:
        if validator is None:
            raise ValueError
        return validator(entry.attrs, now)
    except Exception:
        where = f"{schema.kind} {schema.name} {entry.id!r}: attrs"
        problem = explain.attrs(where, schema, entry.attrs, stored=True) or \
            f"{where} cannot be checked"
        report(Diagnostic.at(entry.where, "E505", problem,
                             "entity data sets only attributes declared `stored`"
                             if "not a stored" in problem else None))
        return None
