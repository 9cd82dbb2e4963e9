"""pytest collects `*.test.policy` files under the directories named by the
`policyd_paths` ini option; each policy test is one pytest item, so policy tests run
with a service's own suite. Each set is compiled once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..language.diagnostics import PolicyError
from ..language.sources import TEST_SUFFIX
from .plan import CheckedTest
from .runner import Failure, Runner
from .suite import SetSource, load, set_root_of

_SETS = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("policyd_paths", type="paths", default=[],
                  help="directories whose *.test.policy files run as policy tests")


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if not file_path.name.endswith(TEST_SUFFIX):
        return None
    roots = [Path(p).resolve() for p in parent.config.getini("policyd_paths")]
    here = file_path.resolve()
    if not any(here == r or r in here.parents for r in roots):
        return None
    return PolicyTestFile.from_parent(parent, path=file_path)


def _loaded(config: pytest.Config, root: Path) -> tuple[Runner | None, list, PolicyError | None]:
    """(runner, tests, error) for a set, loaded once per session."""
    sets = config.stash.setdefault(_SETS, {})
    if root not in sets:
        try:
            suite = load(SetSource(root))
            sets[root] = (Runner(suite.policy_set, suite.name), list(suite.tests), None)
        except PolicyError as exc:
            sets[root] = (None, [], exc)
    return sets[root]


class PolicyTestFailed(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure


class PolicyCheckFailed(Exception):
    pass


class PolicyTestFile(pytest.File):
    def collect(self):
        runner, tests, error = _loaded(self.config, set_root_of(self.path))
        if error is not None:
            yield PolicyCheckItem.from_parent(self, name="policy check", error=error)
            return
        for test in tests:
            if Path(test.file).resolve() == self.path.resolve():
                yield PolicyTestItem.from_parent(self, name=test.name, test=test, runner=runner)


class PolicyTestItem(pytest.Item):
    def __init__(self, *, test: CheckedTest, runner: Runner, **kwargs):
        super().__init__(**kwargs)
        self.test, self.runner = test, runner

    def runtest(self) -> None:
        result = self.runner.run_one(self.test)
        if result.failure is not None:
            raise PolicyTestFailed(result.failure)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, PolicyTestFailed):
            f = excinfo.value.failure
            return f"{f.file}:{f.line}\n{f.message}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, self.test.line - 1, f"policy test: {self.name}"


class PolicyCheckItem(pytest.Item):
    """Stands for a set that does not check, so the run fails with its diagnostics."""

    def __init__(self, *, error: PolicyError, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise PolicyCheckFailed(self.error.render())

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, PolicyCheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, "policy check"
