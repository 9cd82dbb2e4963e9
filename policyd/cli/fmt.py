"""`policyd fmt PATH...`: rewrite policy and test files in the canonical layout;
`--check` lists the files that would change (exit 1), `--diff` prints the change.
A file that does not parse is left as it is, with its diagnostic (exit 1)."""

from __future__ import annotations

import difflib
import sys

from ..language.diagnostics import PolicyError
from ..language.sources import policy_files
from ..testing.printer import format_text
from .common import EXIT_OK, EXIT_POLICY, _missing


def cmd_fmt(args) -> int:
    status, changed = EXIT_OK, []
    for target in args.paths:
        if _missing("fmt", target):
            status = EXIT_POLICY
            continue
        for path in policy_files(target, include_tests=True):
            text = path.read_text(encoding="utf-8")
            try:
                out = format_text(text, str(path))
            except PolicyError as exc:
                print(exc.render(), file=sys.stderr)
                status = EXIT_POLICY
                continue
            if out == text:
                continue
            changed.append(path)
            if args.diff:
                sys.stdout.writelines(difflib.unified_diff(
                    text.splitlines(True), out.splitlines(True), str(path),
                    f"{path} (formatted)"))
            elif not args.check:
                path.write_text(out, encoding="utf-8")
                print(f"formatted {path}")
    if args.check:
        for path in changed:
            print(f"would reformat {path}")
        if changed:
            print(f"{len(changed)} file(s) would be reformatted; run `policyd fmt` on them",
                  file=sys.stderr)
            status = EXIT_POLICY
    return status
