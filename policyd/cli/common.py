"""What the `policyd` commands share: exit codes, the missing-path sentence, printing
diagnostics, reading request JSON, loading a set."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..engine import Engine
from ..language.diagnostics import PolicyError

EXIT_OK, EXIT_POLICY, EXIT_USAGE = 0, 1, 2


def _missing(command: str, path) -> bool:
    """Every command says the same about a path that is not there (and exits 1)."""
    if Path(path).exists():
        return False
    print(f"policyd {command}: no such policy file or directory: {path}", file=sys.stderr)
    return True


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _print_policy_error(exc: PolicyError, fmt: str = "text") -> None:
    if fmt == "json":
        print(json.dumps({"ok": False, "diagnostics": [d.to_dict() for d in exc.diagnostics]},
                         indent=2))
        return
    print(exc.render(), file=sys.stderr)
    errors = sum(d.is_error for d in exc.diagnostics)
    warnings = len(exc.diagnostics) - errors
    print(f"{_count(errors, 'error')}, {_count(warnings, 'warning')}", file=sys.stderr)


def _read_requests(source: str):
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {source}: {getattr(exc, 'strerror', None) or exc}"
                         ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None
    except RecursionError:
        raise ValueError(f"{source} is nested too deeply to be a request") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ValueError(f"{source} is not a valid request: {exc}") from None


def _engine(command: str, args) -> Engine | None:
    """The set at `args.path` (with `--data`), or None after saying why (exit 1)."""
    if _missing(command, args.path):
        return None
    try:
        return Engine.from_path(args.path, data=args.data)
    except PolicyError as exc:
        _print_policy_error(exc)
        return None
