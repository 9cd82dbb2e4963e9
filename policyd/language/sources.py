"""Reading a policy set from disk: which files belong to it, and a snapshot of their text
that is known not to have changed while it was read.

Directory symlinks are followed (a `fences -> ../shared` link is part of the set),
each real directory once, so a link loop ends. Names starting with `.` are skipped:
hidden files, editors' swap files, and the `..data` / `..2026_...` entries of a
Kubernetes ConfigMap volume, whose top-level links already name every file once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .diagnostics import Diagnostic, PolicyError

POLICY_SUFFIX = ".policy"
TEST_SUFFIX = ".test.policy"

Identity = tuple[int, int, str]  # size, mtime in ns, sha256 of the bytes read


def _missing(path: Path) -> PolicyError:
    return PolicyError([Diagnostic.for_path(str(path), "E000",
                                            f"no such policy file or directory: {path}")])


def _walk(root: Path) -> list[Path]:
    """Every non-hidden file below `root`, through directory links, each real directory
    visited once."""
    found, seen, stack = [], set(), [root]
    while stack:
        directory = stack.pop()
        try:
            real = directory.resolve()
            if real in seen:
                continue
            seen.add(real)
            entries = list(os.scandir(directory))
        except OSError:
            continue  # unreadable or vanished: the files that are there still count
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = directory / entry.name
            try:
                if entry.is_dir():  # follows links
                    stack.append(path)
                elif entry.is_file():
                    found.append(path)
            except OSError:
                continue
    return found


def policy_files(path: str | Path, include_tests: bool = False,
                 suffixes: tuple[str, ...] = (POLICY_SUFFIX,)) -> list[Path]:
    """The set's files: one file, or a directory read recursively in path order."""
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise _missing(root)
    files = sorted(p for p in _walk(root) if p.name.endswith(suffixes))
    if not include_tests:
        files = [p for p in files if not p.name.endswith(TEST_SUFFIX)]
    return files


@dataclass(frozen=True)
class Snapshot:
    """The text of every file of a set, with the identity each had when it was read."""

    root: Path
    sources: dict[str, str]
    identities: dict[str, Identity]


def _identity(path: Path, data: bytes) -> Identity:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest())


def read_snapshot(path: str | Path, include_tests: bool = False) -> Snapshot:
    """Read every file; a file whose size or mtime moved while it was read is read again
    (a few times), so a snapshot never holds a file's half-written state as its own."""
    root = Path(path)
    sources: dict[str, str] = {}
    identities: dict[str, Identity] = {}
    for file in policy_files(root, include_tests):
        for _attempt in range(5):
            try:
                before = file.stat()
                data = file.read_bytes()
                ident = _identity(file, data)
            except OSError as exc:
                raise PolicyError([Diagnostic.for_path(str(file), "E000", f"cannot read "
                                                       f"{file}: {exc.strerror or exc}")]
                                  ) from None
            if (before.st_size, before.st_mtime_ns) == ident[:2] and len(data) == ident[0]:
                break
        else:
            raise PolicyError([Diagnostic.for_path(str(file), "E000", f"{file} kept changing "
                                                   "while it was read")])
        try:
            sources[str(file)] = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError([Diagnostic.for_path(str(file), "E000", f"cannot read {file}: "
                                                   f"not UTF-8 ({exc.reason} at byte "
                                                   f"{exc.start})")]) from None
        identities[str(file)] = ident
    if not sources:
        raise PolicyError([Diagnostic.for_path(str(root), "E000",
                                               f"no .policy files under {root}")])
    return Snapshot(root, sources, identities)


def unchanged(snapshot: Snapshot, include_tests: bool = False) -> bool:
    """True when the set on disk is still exactly the snapshot: the same files, each with
    the same size, mtime and content hash (checked after compiling, before installing)."""
    try:
        files = [str(f) for f in policy_files(snapshot.root, include_tests)]
        if files != list(snapshot.identities):
            return False
        for name in files:
            path = Path(name)
            if _identity(path, path.read_bytes()) != snapshot.identities[name]:
                return False
    except (OSError, PolicyError):
        return False
    return True


def read_sources(path: str | Path, include_tests: bool = False) -> dict[str, str]:
    return read_snapshot(path, include_tests).sources


def version_of(sources: dict[str, str], root: str | Path | None = None) -> str:
    """A digest of the set's source: contents and names relative to the set's root."""
    h = hashlib.sha256()
    base = Path(root) if root is not None and Path(root).is_dir() else None
    for path in sorted(sources):
        name = str(Path(path).relative_to(base)) if base else Path(path).name
        h.update(name.encode() + b"\0" + sources[path].encode() + b"\0")
    return "sha256:" + h.hexdigest()[:16]
