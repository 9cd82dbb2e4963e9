"""Imports between policyd's stages run one way only (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "policyd"
# stage -> the stages it may import (its own always)
ALLOWED = {
    "values": set(),
    "language": {"values"},
    "engine": {"language", "values"},
    "authn": set(),
    "server": {"authn", "engine", "language", "values", "wire", "_proto"},
    "testing": {"engine", "language", "values"},
    "plans": {"engine", "values"},
    "wire": {"engine", "_proto"},
    "client": {"engine", "wire", "_proto"},
    "aio_client": {"client", "engine", "wire", "_proto"},
    "integrations": {"authn", "aio_client", "client", "engine", "plans"},
    "cli": {"authn", "engine", "language", "lsp", "plans", "server", "testing", "values",
            "verify", "__init__"},
    "verify": {"engine", "language"},
    "lsp": {"engine", "language", "testing", "__init__"},
    "__init__": {"engine", "integrations", "language"},
    "__main__": {"cli"},
}


def _stage(module: str) -> str:
    return module.split(".")[0]


def _imports(path: Path) -> set[str]:
    """The policyd stages a module imports (resolving relative imports)."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
                if not target:  # `from . import x` at the top: x is the stage
                    target = [alias.name for alias in node.names][:1]
            elif node.module and node.module.startswith("policyd."):
                target = node.module.split(".")[1:]
            else:
                continue
            stage = target[0] if target else "__init__"
            exists = (PACKAGE / stage).is_dir() or (PACKAGE / f"{stage}.py").is_file()
            found.add(stage if exists else "__init__")  # a name the package itself defines
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("policyd.")}
    return found


def test_stages_import_only_upstream():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "_proto":
            continue
        stage = _stage(".".join(rel.with_suffix("").parts))
        for target in _imports(path) - {stage}:
            if target not in ALLOWED[stage]:
                wrong.append(f"{rel} imports {target}")
    assert wrong == []


def test_importing_policyd_imports_no_web_framework_or_database_driver():
    import subprocess
    import sys
    code = ("import sys, policyd, policyd.plans, policyd.client; "
            "print(sorted(m for m in ('sqlalchemy', 'django', 'psycopg', 'starlette', 'z3') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_the_checker_reaches_no_runtime_and_the_engine_no_server():
    lang = {t for p in (PACKAGE / "language").rglob("*.py") for t in _imports(p)}
    engine = {t for p in (PACKAGE / "engine").rglob("*.py") for t in _imports(p)}
    assert "engine" not in lang and "server" not in engine
