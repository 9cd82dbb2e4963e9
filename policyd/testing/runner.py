"""Runs checked tests against one engine and yields their results; reporting is
elsewhere (as in OPA's tester). Each test starts with empty rate buckets and the
clock at START; `after` moves the clock."""

from __future__ import annotations

import json
import time as _time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..engine import Engine
from ..engine.compiler import PolicySet
from ..engine.models import Decision, RequestError
from ..engine.ratelimit import MemoryStore
from .plan import Advance, CheckedTest, Expectation

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the time a test's requests see by default
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class TestClock:
    """The engine's clock during a test: a number that only `after` moves."""

    __test__ = False

    def __init__(self, now: float = START):
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Failure:
    """The failing expectation: where it is, what it said, what the decision was."""

    file: str
    line: int
    expected: str
    details: tuple[str, ...]

    @property
    def message(self) -> str:
        return "\n".join((f"expected: {self.expected.removeprefix('expect ')}", *self.details))


@dataclass(frozen=True)
class TestResult:
    __test__ = False

    set_name: str
    name: str
    file: str
    line: int
    status: str  # passed | failed | skipped
    seconds: float = 0.0
    failure: Failure | None = None


class Coverage:
    """Which rules' conditions held in at least one decision of the tests that ran."""

    def __init__(self, ps: PolicySet):
        self.rules = [rule for rules in ps.rules.values() for rule in rules]
        self.held: set[str] = set()

    @property
    def total(self) -> int:
        return len(self.rules)

    @property
    def covered(self) -> int:
        return sum(rule.name in self.held for rule in self.rules)

    @property
    def percent(self) -> float:
        return 100.0 if not self.rules else 100.0 * self.covered / self.total

    def meets(self, minimum: float) -> bool:
        return self.covered * 100 >= minimum * self.total  # exact: no rounding up to 100

    @property
    def uncovered(self) -> list:
        return [rule for rule in self.rules if rule.name not in self.held]


class Runner:
    """Runs the tests of one compiled set on one engine, reset between tests."""

    def __init__(self, ps: PolicySet, set_name: str = "", coverage: Coverage | None = None):
        self.set_name = set_name or ps.name
        self.clock = TestClock()
        self.policy_set = ps
        self.engine = Engine(ps, clock=self.clock)
        self.coverage = coverage
        self._with_data: dict[str, PolicySet] = {}

    def run(self, tests: Iterable[CheckedTest], selected=None) -> Iterator[TestResult]:
        """One result per test, in order; tests that `selected` refuses are skipped."""
        for test in tests:
            if selected is not None and not selected(test):
                yield TestResult(self.set_name, test.name, test.file, test.line, SKIPPED)
            else:
                yield self.run_one(test)

    def run_one(self, test: CheckedTest) -> TestResult:
        self.clock.now = START
        self.engine.rate_store = MemoryStore()
        t0 = _time.perf_counter()
        failure = None
        for step in test.steps:
            if isinstance(step, Advance):
                self.clock.now += step.seconds
                continue
            failure = self.expect(step)
            if failure is not None:
                break
        return TestResult(self.set_name, test.name, test.file, test.line,
                          FAILED if failure else PASSED, _time.perf_counter() - t0, failure)

    def with_data(self, e: Expectation) -> PolicySet:
        """The set with the entity data an expectation's fixtures give (stored attributes,
        entity fixtures, parents), made once per distinct data and kept."""
        if not e.data and not e.parents:
            return self.policy_set
        key = repr((sorted(e.data.items(), key=repr), sorted(e.parents.items())))
        cache = self._with_data
        found = cache.get(key)
        if found is None:
            if len(cache) >= 256:
                cache.clear()
            found = cache[key] = self.policy_set.with_entities(e.data, e.parents)
        return found

    def expect(self, e: Expectation) -> Failure | None:
        # stored attributes the fixtures set are this expectation's entity data
        wanted = self.with_data(e)
        if self.engine.policy_set is not wanted:
            self.engine.swap(wanted)
        for round_ in range(1, e.repeat + 1):
            for action in e.actions:
                request = {**e.request, "action": action}
                if e.writing:
                    request["write_fields"] = list(e.writing)
                try:
                    # the fast path that serves production, without taking rate tokens...
                    fast = self.engine.check({**request, "dry_run": True})
                    # ...and the explained decision, which names every rule that held
                    decision = self.engine.check(request, explain=True)
                    if self.coverage is not None:
                        self.coverage.held.update(self.engine.rules_held(request))
                except RequestError as exc:  # the checker should have caught it: say so
                    return Failure(e.file, e.line, e.text, (f"request refused: {exc}",))
                details = judge(e, decision) or _disagreement(fast, decision)
                if details:
                    if e.repeat > 1:
                        details = (*details, f"at decision {round_} of {e.repeat}")
                    if len(e.actions) > 1:
                        details = (f"action: {action}", *details)
                    return Failure(e.file, e.line, e.text, details)
        return None


def _disagreement(fast: Decision, explained: Decision) -> tuple[str, ...]:
    """The engine's two paths must agree on the verdict and the fields; never expected."""
    if (fast.allowed, fast.visible_fields) == (explained.allowed, explained.visible_fields):
        return ()
    return (f"decision: {describe(explained)}",
            f"engine error: the fast path decided {describe(fast)} with fields "
            f"{', '.join(fast.visible_fields) or 'none'}; please report this")


def describe(decision: Decision) -> str:
    verdict = "allowed" if decision.allowed else "denied"
    text = f"{verdict} by {', '.join(decision.reasons)}" if decision.reasons else verdict
    if decision.retry_after:
        text += f" (retry after {decision.retry_after:g}s)"
    return text


def judge(e: Expectation, decision: Decision) -> tuple[str, ...]:
    """What is wrong with a decision for an expectation; empty when it holds."""
    if e.visible is not None:
        if not decision.allowed:
            return (f"decision: {describe(decision)}, so no field is visible",)
        actual = set(decision.visible_fields)
        missing = [f for f in e.visible if f not in actual]
        extra = [f for f in decision.visible_fields if f not in e.visible]
        if not missing and not extra:
            return ()
        return (f"decision: visible {', '.join(decision.visible_fields)}",
                *([f"missing: {', '.join(missing)}"] if missing else []),
                *([f"extra: {', '.join(extra)}"] if extra else []))
    refused = [r.split(":", 1)[1] for r in decision.reasons if r.startswith("not_writable:")]
    more = (f"refused writes: {', '.join(refused)}",) if refused and e.allowed else ()
    if decision.allowed != e.allowed:
        return (f"decision: {describe(decision)}", *more)
    absent = [r for r in e.reasons if not any(d == r or d.startswith(r + ":")
                                              for d in decision.reasons)]
    if absent:
        return (f"decision: {describe(decision)}", f"not named: {', '.join(absent)}")
    missing = [f"{k}: {json.dumps(v)}" for k, v in e.outputs
               if not any(out.get(k) == v for out in decision.outputs.values())]
    if missing:
        given = json.dumps(decision.outputs, sort_keys=True) if decision.outputs else "none"
        return (f"outputs: {given}", f"missing: {', '.join(missing)}")
    return ()
