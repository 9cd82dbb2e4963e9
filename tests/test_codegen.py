"""Generated code: golden output, only generated identifiers, hostile policy text stays data."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest

from policyd import Engine, compile_path, compile_text
from policyd.engine import runtime

from .conftest import ROOT

GOLDEN = Path(__file__).resolve().parent / "golden" / "orders_generated.py.txt"
GENERATED_NAME = re.compile(
    r"^(v_p\d+|v_c|v_r\d+|vd_[pr]\d+|t\d+|d_\d+_\d+|l_\d+_\d+|show_\d+|write_\d+|c_\d+_\d+"
    r"|K\d+|h\d+|SEQUENCES|Xd_\d+_\d+_\d+|xd_\d+_\d+_\d+_\d+"
    r"|bind|fast|fp_\d+|fr_\d+|FP|FR|DC|KR|AC_\d+|A_\d+|FB_\d+|C0|E0)$")  # the fast path's
LOCALS = {"_rt", "pid", "P", "rid", "R", "C", "pt", "act", "a", "now", "o", "v", "x", "y", "k", "s",
          "d", "m", "b", "S", "n",
          "request", "p", "r", "action", "pa", "ra", "rt", "c", "f", "found", "explain", "L",
          "G", "A", "e", "wf", "g"}
METHODS = {"isdisjoint", "issuperset", "get", "append", "items", "values",
           "exhausted"}  # a rate verdict's


def test_golden_generated_code_for_orders(monkeypatch):
    monkeypatch.chdir(ROOT)
    source = compile_path("policies/examples/orders").source
    if os.environ.get("POLICYD_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(source, encoding="utf-8")
    assert source == GOLDEN.read_text(encoding="utf-8")


def assert_only_generated_names(source: str) -> None:
    """Every identifier in generated code is one codegen made, a local, a runtime name,
    or one of the restricted builtins; policy text appears only inside literals."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            assert GENERATED_NAME.match(node.id) or node.id in LOCALS \
                or node.id in runtime.BUILTINS, node.id
        elif isinstance(node, ast.FunctionDef):
            assert GENERATED_NAME.match(node.name), node.name
        elif isinstance(node, ast.Attribute):
            value = node.value
            if isinstance(value, ast.Name) and value.id == "_rt":
                assert hasattr(runtime, node.attr), node.attr
            else:
                assert node.attr in METHODS, node.attr
        elif isinstance(node, ast.Import | ast.ImportFrom | ast.Lambda | ast.ClassDef):
            raise AssertionError(f"generated code must not contain {type(node).__name__}")


@pytest.mark.parametrize("example", ["orders", "documents", "admin"])
def test_examples_use_only_generated_names(example):
    assert_only_generated_names(compile_path(ROOT / "policies" / "examples" / example).source)


def test_each_function_points_at_its_policy_line(monkeypatch):
    monkeypatch.chdir(ROOT)
    ps = compile_path("policies/examples/orders")
    assert "# policies/examples/orders/orders.policy:4 orders.tenant_isolation" in ps.source
    lines = ps.source.splitlines()
    mapped = [i for i, line in enumerate(lines, 1) if "orders.tenant_isolation" in line
              and "if " in line]
    assert mapped and all(ps.policy_location("<policyd x>", i) == (
        "policies/examples/orders/orders.policy", 4) for i in mapped)


HOSTILE_STRINGS = [  # the values themselves; the policy carries them as JSON string literals
    '"); __import__("os").system("touch /tmp/policyd_pwned"); ("',
    "\\\"\n__import__('os')\n",
    "{__class__.__mro__}{0}",
    "\'\'\'\"\"\"",
    "line\nbreak\r\u2028end",
    "\x00nul # comment",
]


@pytest.mark.parametrize("evil", HOSTILE_STRINGS)
def test_hostile_string_literals_stay_data(evil, tmp_path):
    lit = json.dumps(evil)
    text = f"""
principal __class__ {{ __import__: string }}
resource __builtins__ {{
  __class__: string
  actions __init__, import, exec
}}
const __globals__ = {lit}
const evil_set = [{lit}, "x"]
policy __dict__ for __builtins__ {{
  __call__: allow import, __init__ when resource.__class__ == __globals__
    and principal.__import__ in evil_set and resource.__class__ like {lit}
  show __class__ when true
}}
"""
    ps = compile_text(text, "evil\n__import__('os').system('x').policy")
    assert_only_generated_names(ps.source)
    value = evil
    engine = Engine(ps)
    request = {"principal": {"type": "__class__", "id": "p", "attrs": {"__import__": value}},
               "action": "import",
               "resource": {"type": "__builtins__", "id": "r", "attrs": {"__class__": value}}}
    d = engine.check(request)
    assert d.allowed and d.reasons == ["__dict__.__call__"]
    assert d.visible_fields == ["id", "__class__"]
    request["resource"]["attrs"]["__class__"] = value + "!"
    assert not engine.check(request).allowed
    assert not Path("/tmp/policyd_pwned").exists()


def test_generated_code_cannot_reach_python_builtins():
    ps = compile_text("resource R { actions go }\npolicy p for R { allow go when true }")
    namespace_builtins = ps.validators["resource:R"].__globals__["__builtins__"]
    assert set(namespace_builtins) == set(runtime.BUILTINS)
    assert "__import__" not in namespace_builtins and "open" not in namespace_builtins


def test_shared_conditions_are_assigned_before_any_use():
    """A deny condition reused by later rules is computed once into a local; an earlier
    rule that contains the same expression must not read that local before it exists."""
    text = """
principal U { roles: set<string> }
role admin
resource R { public: bool actions go }
policy p for R {
  first: deny go when resource.public and not (principal is admin)
  second: deny go unless principal is admin
  allow go when principal is admin
  show public when principal is admin
}
"""
    ps = compile_text(text)
    engine = Engine(ps)
    assert "h0 = " in ps.source
    for roles in ([], ["admin"]):
        for public in (True, False):
            d = engine.check({"principal": {"type": "U", "id": "u", "attrs": {"roles": roles}},
                              "action": "go",
                              "resource": {"type": "R", "id": "r", "attrs": {"public": public}}})
            assert "error" not in d.reasons
            assert d.allowed is (roles == ["admin"])
