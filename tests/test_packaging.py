"""The grammar ships inside the wheel and is found from an installed wheel, not only from
the source tree of an editable install."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from .conftest import ROOT


def test_wheel_ships_the_grammar_and_parses_from_it(tmp_path):
    from hatchling.builders.wheel import WheelBuilder

    wheel = next(iter(WheelBuilder(str(ROOT)).build(directory=str(tmp_path / "dist"),
                                                    versions=["standard"])))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "policyd/grammar/policyd.lark" in names
        zf.extractall(tmp_path / "site")
    script = (
        "import policyd, policyd.language.parser as p, pathlib;"
        "assert 'site' in pathlib.Path(policyd.__file__).parts, policyd.__file__;"
        "print(len(p.parse('role a').decls))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site"),
                                             "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
