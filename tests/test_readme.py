"""The README's tour is executable: its policy checks (and its typo gives the diagnostic
shown), and its Python snippet prints what the comment says."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from policyd import PolicyError, compile_text

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)


def test_tour_policy_checks_and_its_typo_is_diagnosed_as_shown():
    policy = next(body for lang, body in BLOCKS if body.startswith("principal User"))
    compile_text(policy, "orders.policy")
    shown = next(body for lang, body in BLOCKS if body.startswith("orders.policy:"))
    typo = policy.replace("!= resource.tenant", "!= resource.tennant")
    with pytest.raises(PolicyError) as exc:
        compile_text(typo, "orders.policy")
    assert exc.value.render() + "\n1 error, 0 warnings\n" == shown


def _prints_what_it_says(code: str, namespace: dict | None = None) -> None:
    """Run a snippet; what it prints is its last line's comment."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {} if namespace is None else namespace)
    expected = re.search(r"# (.*)$", code.strip().splitlines()[-1]).group(1)
    assert out.getvalue().strip() == expected


def test_python_snippet_prints_what_it_says(monkeypatch):
    monkeypatch.chdir(ROOT)
    _prints_what_it_says(next(body for lang, body in BLOCKS
                              if lang == "python" and "Engine" in body))


def test_plan_snippet_prints_what_it_says(monkeypatch):
    monkeypatch.chdir(ROOT)
    first = next(body for lang, body in BLOCKS if lang == "python" and "Engine" in body)
    code = next(body for lang, body in BLOCKS if lang == "python" and "to_sql" in body)
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(first, "README.md", "exec"), namespace)
    _prints_what_it_says(code, namespace)


def test_policy_test_snippet_is_one_of_the_orders_examples_tests():
    snippet = next(body for lang, body in BLOCKS if body.startswith("test "))
    assert snippet in (ROOT / "policies/examples/orders/orders.test.policy").read_text()


def test_relationship_snippets_are_the_repos_example_and_print_what_they_say(monkeypatch):
    policy = next(body for lang, body in BLOCKS if body.startswith("policy repos"))
    source = (ROOT / "policies/examples/repos/repos.policy").read_text()
    assert all(line in source for line in policy.splitlines())
    monkeypatch.chdir(ROOT)
    _prints_what_it_says(next(body for lang, body in BLOCKS
                              if lang == "python" and "repos" in body))
