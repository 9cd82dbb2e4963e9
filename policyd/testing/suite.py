"""Finds the policy sets under a path and loads each with its tests: compiled once,
tests checked against it, every diagnostic of the set reported together.

A directory that holds `.policy` files at its top level is one set (read
recursively, as `serve` reads it); a directory without any is a collection whose
subdirectories are looked at the same way. So `policies/examples` is three sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..compiler import (
    POLICY_SUFFIX,
    TEST_SUFFIX,
    PolicySet,
    compile_sources,
    parse_each,
    read_sources,
    version_of,
)
from ..diagnostics import Diagnostic, PolicyError
from .checker import check_tests
from .parse import parse_tests
from .plan import CheckedTest


class NoSuchPath(ValueError):
    """The path does not exist: reported like a policy error, as `check` always has."""


@dataclass(frozen=True)
class SetSource:
    root: Path
    only: Path | None = None  # run only this test file's tests (fixtures come from all)


@dataclass(frozen=True)
class Suite:
    name: str
    policy_set: PolicySet
    tests: tuple[CheckedTest, ...]
    test_files: tuple[str, ...]


def _has_policy_files(directory: Path) -> bool:
    return any(p.is_file() and p.name.endswith(POLICY_SUFFIX) for p in directory.iterdir())


def _set_roots(directory: Path) -> list[Path]:
    if _has_policy_files(directory):
        return [directory]
    return [root for sub in sorted(p for p in directory.iterdir() if p.is_dir())
            for root in _set_roots(sub)]


def set_root_of(file: Path) -> Path:
    """The set a test file belongs to: the highest of its enclosing directories that
    hold policy files, without a gap."""
    root = file.parent
    while root.parent != root and _has_policy_files(root.parent):
        root = root.parent
    return root


def discover(path: str | Path) -> list[SetSource]:
    """The sets under a path: a test file (its set, only its tests), a policy file (a
    one-file set), or a directory (each set found in it)."""
    p = Path(path)
    if not p.exists():
        raise NoSuchPath(f"no such policy file or directory: {p}")
    if p.is_file():
        if p.name.endswith(TEST_SUFFIX):
            return [SetSource(set_root_of(p), p)]
        return [SetSource(p)]
    return [SetSource(root) for root in _set_roots(p)]


def load(source: SetSource) -> Suite:
    """Compile the set and check its tests; PolicyError carries every problem of both."""
    every = read_sources(source.root, include_tests=True)
    tests = {k: v for k, v in every.items() if k.endswith(TEST_SUFFIX)}
    policies = {k: v for k, v in every.items() if k not in tests}
    name = str(source.root)
    parsed, errors = parse_each(tests, parse_tests)
    try:
        if not policies:
            raise PolicyError([Diagnostic("E000", f"no policy files under {name} (only tests)",
                                          name, 1, 1)])
        ps = compile_sources(policies, name, version_of(policies, source.root))
    except PolicyError as exc:
        raise PolicyError([*exc.diagnostics, *errors], every) from None
    if errors:
        raise PolicyError(errors, every)
    try:
        checked = check_tests(ps.checked, parsed)
    except PolicyError as exc:
        raise PolicyError(exc.diagnostics, every) from None
    if source.only is not None:
        only = str(source.only)
        checked = [t for t in checked if Path(t.file) == Path(only)]
    return Suite(name, ps, tuple(checked), tuple(tests))
