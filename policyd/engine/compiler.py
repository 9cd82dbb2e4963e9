"""A checked set to a PolicySet: generate the Python source and compile() it.

Three steps in one place, as Jinja2 does it: check (the language stage),
generate, compile. Generated code runs with the runtime module as its only
global and a fixed table of builtins.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..language import check_sources
from ..language.checked import CheckedSet
from ..language.codegen import generate
from ..language.diagnostics import PolicyError
from ..language.planning import build_program
from ..language.sources import Snapshot, as_text, read_snapshot, version_of
from . import datacache
from .dataload import build as build_entities
from .policyset import DEFAULT_MAX_STRING_BYTES, PolicySet, functions, instantiate
from .routes import RouteTable


def compile_checked(checked: CheckedSet, name: str,
                    max_string_bytes: int = DEFAULT_MAX_STRING_BYTES,
                    snapshot: Snapshot | None = None,
                    data: dict[str, str] | None = None) -> PolicySet:
    """The generated module compiled, and the set's entity data checked against it."""
    data = (snapshot.data if snapshot is not None else {}) if data is None else data
    gen = generate(checked, name, max_string_bytes)
    code = compile(gen.source, f"<policyd {name}>", "exec")
    namespace = instantiate(code)
    validators = {k: namespace[v] for k, v in gen.validators.items()}
    schema = checked.schema()
    key = datacache.key_of(snapshot, data, schema, max_string_bytes)
    entities, problems = datacache.reused(key), ()
    if entities is None:
        entities, problems = build_entities(data, schema, validators, max_string_bytes)
        if not problems:
            datacache.remember(key, entities)
    if problems:
        raise PolicyError(problems, {**checked.sources,
                                     **{k: as_text(v) for k, v in data.items()}})
    namespace["_g"] = entities
    return PolicySet(
        name=name,
        version=checked.version,
        schema=schema,
        rules={r: tuple(rule.info() for rule in rules) for r, rules in checked.rules.items()},
        sources=checked.sources,
        warnings=checked.warnings,
        generated=gen,
        entities=entities,
        fields={r: ("id",) + s.fields for r, s in checked.resources.items()},
        max_string_bytes=max_string_bytes,
        role_attrs=checked.role_attrs,
        routes=RouteTable(checked.routes),
        plans=build_program(checked),
        snapshot=replace(snapshot, data={}) if snapshot is not None else None,  # text let go
        code=code,
        **functions(gen, namespace, checked.resources),
    )


def compile_sources(sources: dict[str, str], name: str, version: str,
                    max_string_bytes: int = DEFAULT_MAX_STRING_BYTES,
                    snapshot: Snapshot | None = None,
                    data: dict[str, str] | None = None) -> PolicySet:
    """Parse every file (reporting every syntax error), check, generate and compile."""
    return compile_checked(check_sources(sources, version), name, max_string_bytes, snapshot,
                           data)


def data_paths(data) -> tuple[str | Path, ...]:
    """`data=` as paths: one path (a str or Path) or a sequence of them; a single string
    iterated would be its characters ("no such data file or directory: t")."""
    if data is None:
        return ()
    if isinstance(data, str | Path):
        return (data,)
    return tuple(data)


def compile_path(path: str | Path, max_string_bytes: int = DEFAULT_MAX_STRING_BYTES,
                 data: str | Path | tuple[str | Path, ...] | list = ()) -> PolicySet:
    """A set from disk, with its entity data (files in the set and at each `data` path);
    the snapshot it was read from rides along, so a reload can tell whether the files
    changed while they were compiled."""
    snap = read_snapshot(path, data_paths=data_paths(data))
    return compile_sources(snap.sources, str(path), snap.version, max_string_bytes, snap)


def compile_text(text: str, name: str = "<policy>",
                 max_string_bytes: int = DEFAULT_MAX_STRING_BYTES) -> PolicySet:
    sources = {name: text}
    return compile_sources(sources, name, version_of(sources), max_string_bytes)
