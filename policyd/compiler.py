"""Policy text to a PolicySet: read files, parse, check, generate, compile().

The PolicySet holds the generated functions indexed by resource type and
action, plus what the engine needs to finish a decision (field bit masks).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import runtime
from .checked import CheckedSet
from .checker import check
from .codegen import Generated, generate
from .diagnostics import Diagnostic, PolicyError
from .parser import parse

POLICY_SUFFIX = ".policy"
TEST_SUFFIX = ".test.policy"


def policy_files(path: str | Path, include_tests: bool = False) -> list[Path]:
    """The set's files: one file, or a directory read recursively in path order."""
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise PolicyError([Diagnostic("E000", f"no such policy file or directory: {root}",
                                      str(root), 1, 1)])
    files = sorted(p for p in root.rglob("*" + POLICY_SUFFIX) if p.is_file())
    if not include_tests:
        files = [p for p in files if not p.name.endswith(TEST_SUFFIX)]
    return files


def read_sources(path: str | Path, include_tests: bool = False) -> dict[str, str]:
    sources: dict[str, str] = {}
    for file in policy_files(path, include_tests):
        try:
            sources[str(file)] = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError([Diagnostic("E000", f"cannot read {file}: {exc}", str(file), 1, 1)]
                              ) from None
    if not sources:
        raise PolicyError([Diagnostic("E000", f"no .policy files under {path}", str(path), 1, 1)])
    return sources


def version_of(sources: dict[str, str], root: str | Path | None = None) -> str:
    """A digest of the set's source: contents and names relative to the set's root."""
    h = hashlib.sha256()
    base = Path(root) if root is not None and Path(root).is_dir() else None
    for path in sorted(sources):
        name = str(Path(path).relative_to(base)) if base else Path(path).name
        h.update(name.encode() + b"\0" + sources[path].encode() + b"\0")
    return "sha256:" + h.hexdigest()[:16]


@dataclass(frozen=True)
class PolicySet:
    """A compiled policy set: generated functions plus the metadata decisions need."""

    name: str
    checked: CheckedSet
    generated: Generated
    validators: dict
    deciders: dict  # type -> {action -> function}
    limiters: dict  # type -> {action -> function}, only where limit rules apply
    show: dict  # type -> function
    write: dict  # type -> function
    fields: dict  # type -> ("id", *attributes): bit i is fields[i]
    namespace: dict = field(repr=False, compare=False)  # the generated module's globals
    visible_cache: dict = field(default_factory=dict, compare=False)

    @functools.cached_property
    def conditions(self) -> dict:
        """Rule full name -> its condition as a function; compiled on first use, since
        only explain and test coverage need them (halves compile time for large sets)."""
        code = compile(self.generated.explain_source, f"<policyd {self.name} explain>", "exec")
        exec(code, self.namespace)  # same origin and rules as the main module
        return {k: self.namespace[v] for k, v in self.generated.conditions.items()}

    @property
    def version(self) -> str:
        return self.checked.version

    @property
    def source(self) -> str:
        return self.generated.source + "\n" + self.generated.explain_source

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return self.checked.warnings

    def fields_of(self, rtype: str, mask: int) -> tuple[str, ...]:
        """The field names of a mask, in declaration order (cached: masks repeat)."""
        key = (rtype, mask)
        found = self.visible_cache.get(key)
        if found is None:
            names = self.fields[rtype]
            found = tuple(f for i, f in enumerate(names) if mask >> i & 1)
            if len(self.visible_cache) < 65536:
                self.visible_cache[key] = found
        return found

    def policy_location(self, filename: str, line: int) -> tuple[str, int] | None:
        """The policy file and line that a line of generated code came from."""
        if filename.endswith(" explain>"):
            return self.generated.explain_linemap.get(line)
        return self.generated.linemap.get(line)


def parse_each(sources: dict[str, str], parse_one: Callable) -> tuple[list, list[Diagnostic]]:
    """Every file parsed, and every file's syntax error (one per file), not just the first."""
    parsed, errors = [], []
    for path, text in sources.items():
        try:
            parsed.append(parse_one(text, path))
        except PolicyError as exc:
            errors.extend(exc.diagnostics)
    return parsed, errors


def compile_sources(sources: dict[str, str], name: str, version: str) -> PolicySet:
    """Parse every file (reporting every syntax error), check, generate and compile."""
    files, errors = parse_each(sources, parse)
    if errors:
        raise PolicyError(errors, sources)
    checked = check(files, sources, version)
    gen = generate(checked, name)
    code = compile(gen.source, f"<policyd {name}>", "exec")
    namespace: dict = {"__builtins__": dict(runtime.BUILTINS), "_rt": runtime}
    exec(code, namespace)  # generated from the checked AST only; see codegen's docstring
    deciders: dict[str, dict] = {}
    for (rtype, action), fn in gen.deciders.items():
        deciders.setdefault(rtype, {})[action] = namespace[fn]
    limiters: dict[str, dict] = {rtype: {} for rtype in checked.resources}
    for (rtype, action), fn in gen.limiters.items():
        limiters[rtype][action] = namespace[fn]
    return PolicySet(
        name=name,
        checked=checked,
        generated=gen,
        validators={k: namespace[v] for k, v in gen.validators.items()},
        deciders=deciders,
        limiters=limiters,
        show={k: namespace[v] for k, v in gen.visibility.items()},
        write={k: namespace[v] for k, v in gen.writable.items()},
        namespace=namespace,
        fields={r: ("id",) + s.fields for r, s in checked.resources.items()},
    )


def compile_path(path: str | Path) -> PolicySet:
    sources = read_sources(path)
    return compile_sources(sources, str(path), version_of(sources, path))


def compile_text(text: str, name: str = "<policy>") -> PolicySet:
    sources = {name: text}
    return compile_sources(sources, name, version_of(sources))
