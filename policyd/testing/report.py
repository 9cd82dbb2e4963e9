"""Reporters over test results: text for people, JSON for tools, JUnit XML for CI.
They only read results; running happens in runner.py."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..language.diagnostics import PolicyError
from .runner import FAILED, PASSED, SKIPPED, Coverage, TestResult

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Text that XML 1.0 can carry: a test name may hold any escaped character."""
    return _NOT_XML.sub("\ufffd", text)


@dataclass
class SetReport:
    """One set's outcome: its results and coverage, or the errors that stopped it."""

    path: str
    version: str = ""
    results: list[TestResult] = field(default_factory=list)
    coverage: Coverage | None = None
    error: PolicyError | None = None
    warnings: tuple = ()  # about the tests: W206, an undeclared role in a fixture
    sources: dict = field(default_factory=dict)


def _count(reports: Sequence[SetReport], status: str) -> int:
    return sum(r.status == status for rep in reports for r in rep.results)


def summary(reports: Sequence[SetReport]) -> str:
    """`N passed, M failed` (and `, K skipped` when any were)."""
    line = f"{_count(reports, PASSED)} passed, {_count(reports, FAILED)} failed"
    skipped = _count(reports, SKIPPED)
    return line + (f", {skipped} skipped" if skipped else "")


def text_report(reports: Sequence[SetReport], verbose: bool = False) -> str:
    out: list[str] = []
    for rep in reports:
        if rep.error is not None:
            out.append(f"ERROR {rep.path}: the set or its tests do not check "
                       f"({len([d for d in rep.error.diagnostics if d.is_error])} errors)")
        for r in rep.results:
            if r.status == FAILED and r.failure is not None:
                f = r.failure
                out.append(f"FAIL {r.name} ({f.file}:{f.line})")
                out.extend("  " + line for line in f.message.splitlines())
            elif verbose:
                word = "PASS" if r.status == PASSED else "SKIP"
                out.append(f"{word} {r.name} ({r.file}:{r.line})")
    for rep in reports:
        if rep.coverage is not None:
            out.extend(coverage_lines(rep.path, rep.coverage))
    out.append(summary(reports))
    return "\n".join(out) + "\n"


def coverage_lines(path: str, cov: Coverage) -> list[str]:
    lines = [f"coverage {path}: {cov.percent:.1f}% ({cov.covered}/{cov.total} rules)"]
    lines.extend(f"  uncovered {rule.effect} {rule.name} ({rule.file}:{rule.line})"
                 for rule in cov.uncovered)
    return lines


def _result_dict(r: TestResult) -> dict:
    out = {"name": r.name, "file": r.file, "line": r.line, "status": r.status,
           "seconds": round(r.seconds, 6)}
    if r.failure is not None:
        f = r.failure
        out["failure"] = {"file": f.file, "line": f.line, "expected": f.expected,
                          "details": list(f.details)}
    return out


def _coverage_dict(cov: Coverage) -> dict:
    return {"percent": round(cov.percent, 2), "covered": cov.covered, "total": cov.total,
            "uncovered": [{"rule": r.name, "effect": r.effect, "file": r.file, "line": r.line}
                          for r in cov.uncovered]}


def json_report(reports: Sequence[SetReport], ok: bool) -> str:
    sets = []
    for rep in reports:
        entry: dict = {"path": rep.path, "policy_version": rep.version,
                       "tests": [_result_dict(r) for r in rep.results]}
        if rep.coverage is not None:
            entry["coverage"] = _coverage_dict(rep.coverage)
        if rep.error is not None:
            entry["diagnostics"] = [d.to_dict() for d in rep.error.diagnostics]
        elif rep.warnings:
            entry["diagnostics"] = [d.to_dict() for d in rep.warnings]
        sets.append(entry)
    return json.dumps({"ok": ok, "passed": _count(reports, PASSED),
                       "failed": _count(reports, FAILED), "skipped": _count(reports, SKIPPED),
                       "sets": sets}, indent=2) + "\n"


def junit_report(reports: Sequence[SetReport]) -> str:
    """JUnit XML: a testsuite per set, a testcase per test; a set that does not check
    is one testcase with an error, so CI shows it instead of zero tests."""
    root = ET.Element("testsuites", name="policyd")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for rep in reports:
        suite = ET.SubElement(root, "testsuite", name=rep.path)
        counts = {"tests": len(rep.results), "failures": 0, "errors": 0, "skipped": 0}
        for r in rep.results:
            case = ET.SubElement(suite, "testcase", classname=r.file, name=_xml(r.name),
                                 file=r.file, line=str(r.line), time=f"{r.seconds:.6f}")
            if r.status == FAILED and r.failure is not None:
                counts["failures"] += 1
                first = r.failure.message.splitlines()[0]
                failure = ET.SubElement(case, "failure", message=_xml(first), type="expectation")
                failure.text = _xml(f"{r.failure.file}:{r.failure.line}\n{r.failure.message}")
            elif r.status == SKIPPED:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message="deselected by -k")
        if rep.error is not None:
            counts["tests"] += 1
            counts["errors"] += 1
            case = ET.SubElement(suite, "testcase", classname=rep.path, name="policy check")
            error = ET.SubElement(case, "error", message=_xml(str(rep.error)), type="PolicyError")
            error.text = _xml(rep.error.render())
        time = sum(r.seconds for r in rep.results)
        suite.attrib.update({k: str(v) for k, v in counts.items()}, time=f"{time:.6f}")
        for k in totals:
            totals[k] += counts[k]
    root.attrib.update({k: str(v) for k, v in totals.items()})
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"
