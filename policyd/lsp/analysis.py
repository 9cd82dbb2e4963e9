"""What the editor shows of a set: every diagnostic of every file (the open documents'
text over what is on disk), and the parsed and checked forms the index reads.

The set of a document is found as `policyd test` finds it (the highest enclosing
directories holding policy files), so a file is checked with its siblings.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.compiler import compile_checked
from ..language import check_sources, parse_each
from ..language.checked import CheckedSet
from ..language.diagnostics import Diagnostic, PolicyError
from ..language.parser import parse
from ..language.sources import TEST_SUFFIX, read_snapshot, version_of
from ..testing.checker import check_tests_and_warn
from ..testing.parse import parse_tests
from ..testing.suite import set_root_of


@dataclass
class Analysis:
    root: Path
    sources: dict[str, str]
    diagnostics: dict[str, list[Diagnostic]] = field(default_factory=dict)
    policies: dict = field(default_factory=dict)  # file -> PolicyFile (those that parse)
    tests: dict = field(default_factory=dict)  # file -> TestFile
    checked: CheckedSet | None = None


def set_sources(path: Path, open_docs: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """The set's files (policies and tests), with open documents' text in place."""
    root = set_root_of(path) if path.exists() or path.parent.exists() else path.parent
    try:
        sources = dict(read_snapshot(root, include_tests=True).sources)
    except (OSError, ValueError):
        sources = {}
    for name, text in open_docs.items():
        p = Path(name)
        if p == path or root in p.parents:
            sources[str(p)] = text
    sources.setdefault(str(path), open_docs.get(str(path), ""))
    return root, sources


def analyse(path: Path, open_docs: dict[str, str]) -> Analysis:
    root, sources = set_sources(path, open_docs)
    out = Analysis(root, sources)
    tests = {k: v for k, v in sources.items() if k.endswith(TEST_SUFFIX)}
    policies = {k: v for k, v in sources.items() if k not in tests}
    for name, text in policies.items():
        with contextlib.suppress(PolicyError):  # its syntax error is a diagnostic below
            out.policies[name] = parse(text, name)
    parsed, errors = parse_each(tests, parse_tests)
    out.tests = {t.file: t for t in parsed}
    found = list(errors)
    try:
        out.checked = check_sources(policies, version_of(policies))
        found += list(out.checked.warnings)
        ps = compile_checked(out.checked, str(root))
        _, warnings = check_tests_and_warn(out.checked, parsed, ps)
        found += list(warnings)
    except PolicyError as exc:
        found += exc.diagnostics
    for d in found:
        out.diagnostics.setdefault(d.file, []).append(d)
    return out
