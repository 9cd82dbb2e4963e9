"""Finds the policy sets under a path and loads each with its tests: compiled once,
tests checked against it, every diagnostic of the set reported together.

A directory that holds `.policy` files at its top level is one set (read
recursively, as `serve` reads it); a directory without any is a collection whose
subdirectories are looked at the same way. So `policies/examples` is three sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..engine.compiler import compile_checked
from ..engine.policyset import PolicySet
from ..language import check_sources, parse_each
from ..language.checked import CheckedSet
from ..language.diagnostics import Diagnostic, PolicyError
from ..language.sources import POLICY_SUFFIX, TEST_SUFFIX, as_text, read_snapshot, version_of
from .checker import check_tests_and_warn
from .parse import parse_tests
from .plan import CheckedTest


class NoSuchPath(ValueError):
    """The path does not exist: reported like a policy error, as `check` always has."""


@dataclass(frozen=True)
class SetSource:
    root: Path
    only: Path | None = None  # run only this test file's tests (fixtures come from all)
    data: tuple[str, ...] = ()  # --data paths outside the set


@dataclass(frozen=True)
class Suite:
    name: str
    policy_set: PolicySet
    tests: tuple[CheckedTest, ...]
    test_files: tuple[str, ...]
    checked: CheckedSet  # what the tests were checked against (fixtures, editors)
    warnings: tuple = ()  # about the tests (W206: an undeclared role in a fixture)
    sources: dict = field(default_factory=dict)  # every file's text, for rendering


def _visible(directory: Path) -> list[Path]:
    """Entries that may belong to a set: hidden ones (`.git`, a ConfigMap's `..data`) never."""
    try:
        return sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    except OSError:
        return []


def _has_policy_files(directory: Path) -> bool:
    return any(p.is_file() and p.name.endswith(POLICY_SUFFIX) for p in _visible(directory))


def _set_roots(directory: Path, seen: set | None = None) -> list[Path]:
    seen = set() if seen is None else seen
    real = directory.resolve()
    if real in seen:  # a directory link loop
        return []
    seen.add(real)
    if _has_policy_files(directory):
        return [directory]
    return [root for sub in _visible(directory) if sub.is_dir()
            for root in _set_roots(sub, seen)]


def set_root_of(file: Path) -> Path:
    """The set a test file belongs to: the highest of its enclosing directories that
    hold policy files, without a gap."""
    root = file.parent
    while root.parent != root and _has_policy_files(root.parent):
        root = root.parent
    return root


def discover(path: str | Path, data=()) -> list[SetSource]:
    """The sets under a path: a test file (its set, only its tests), a policy file (a
    one-file set), or a directory (each set found in it); `data` paths add entity data."""
    p, data = Path(path), tuple(map(str, data))
    if not p.exists():
        raise NoSuchPath(f"no such policy file or directory: {p}")
    if p.is_file():
        if p.name.endswith(TEST_SUFFIX):
            return [SetSource(set_root_of(p), p, data)]
        return [SetSource(p, None, data)]
    return [SetSource(root, None, data) for root in _set_roots(p)]


def load(source: SetSource) -> Suite:
    """Compile the set with its entity data and check its tests; PolicyError carries every
    problem of all of them."""
    snap = read_snapshot(source.root, include_tests=True, data_paths=source.data)
    every = {**snap.sources, **{k: as_text(v) for k, v in snap.data.items()}}
    tests = {k: v for k, v in snap.sources.items() if k.endswith(TEST_SUFFIX)}
    policies = {k: v for k, v in snap.sources.items() if k not in tests}
    name = str(source.root)
    parsed, errors = parse_each(tests, parse_tests)
    try:
        if not policies:
            raise PolicyError([Diagnostic.for_path(name, "E000",
                                                   f"no policy files under {name} (only tests)")])
        checked_set = check_sources(policies, version_of(policies, source.root, snap.data))
        ps = compile_checked(checked_set, name, data=snap.data)
    except PolicyError as exc:
        raise PolicyError([*exc.diagnostics, *errors], every) from None
    if errors:
        raise PolicyError(errors, every)
    try:
        checked, warnings = check_tests_and_warn(checked_set, parsed, ps)
    except PolicyError as exc:
        raise PolicyError(exc.diagnostics, every) from None
    if source.only is not None:
        only = str(source.only)
        checked = [t for t in checked if Path(t.file) == Path(only)]
    return Suite(name, ps, tuple(checked), tuple(tests), checked_set, warnings, every)
