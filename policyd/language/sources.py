"""Reading a policy set from disk: which files belong to it, and a snapshot of their text
that is known not to have changed while it was read.

Directory symlinks are followed (a `fences -> ../shared` link is part of the set),
each real directory once, so a link loop ends. Names starting with `.` are skipped:
hidden files, editors' swap files, and the `..data` / `..2026_...` entries of a
Kubernetes ConfigMap volume, whose top-level links already name every file once.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostic, PolicyError

POLICY_SUFFIX = ".policy"
TEST_SUFFIX = ".test.policy"
DATA_SUFFIXES = (".data.json", ".data.jsonl")  # entity data: stored attributes

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
    sources: dict[str, str]  # policy (and with include_tests, test) files
    identities: dict[str, Identity]
    data: dict = field(default_factory=dict)  # entity data files: str or DataText
    data_paths: tuple[str, ...] = ()  # --data paths outside the set

    @property
    def version(self) -> str:
        return version_of(self.sources, self.root, self.data,
                          {path: ident[2] for path, ident in self.identities.items()})


def data_files(root: str | Path, extra: tuple[str | Path, ...] = ()) -> list[Path]:
    """Entity data files inside the set (a directory) and at each extra path."""
    out: list[Path] = []
    for place in (Path(root), *map(Path, extra)):
        # inside the set only *.data.json(l) (requests may sit beside it); a --data path
        # is entity data, so any .json or .jsonl file there
        suffixes = DATA_SUFFIXES if place == Path(root) else (".json", ".jsonl")
        if place.is_file() and place.name.endswith(suffixes):
            out.append(place)
        elif place.is_dir():
            out.extend(sorted(p for p in _walk(place) if p.name.endswith(suffixes)))
        elif place != Path(root):
            raise PolicyError([Diagnostic.for_path(str(place), "E000",
                                                   f"no such data file or directory: {place}")])
    return list(dict.fromkeys(out))


def _identity(path: Path, data: bytes) -> Identity:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest())


PIECE = 4 << 20  # bytes decoded at once: a long decode would hold the GIL for long


class DataText:
    """A large data file's text as pieces that each end at a line end. One str of 200 MB
    takes one long hold of the GIL to build (0.4-0.9 s measured: decisions stop for it
    during a reload); pieces never do. Joined (`str()`) only where a diagnostic needs the
    whole text."""

    __slots__ = ("pieces",)

    def __init__(self, pieces: tuple[str, ...]):
        self.pieces = pieces

    def __str__(self) -> str:
        return "".join(self.pieces)


def as_text(text) -> str:
    """A source's or data file's whole text (a DataText joined)."""
    return text if type(text) is str else str(text)


def decoded_data(raw: bytes):
    """A data file's text: a str when small, else a DataText of pieces of about PIECE
    bytes, each ending at a line end (a .jsonl line is never split across two)."""
    if len(raw) <= PIECE:
        return raw.decode("utf-8")
    pieces, carry = [], ""
    for part in _decoded_parts(raw):
        part = carry + part
        end = part.rfind("\n") + 1
        if end:
            pieces.append(part[:end])
        carry = part[end:]
    if carry:
        pieces.append(carry)
    return DataText(tuple(pieces))


def decoded(raw: bytes) -> str:
    """UTF-8 text, decoded a few megabytes at a time (a reload of 200 MB of data never
    stops decisions for the whole decode); errors give their position in the file."""
    if len(raw) <= PIECE:
        return raw.decode("utf-8")
    return "".join(_decoded_parts(raw))


def _decoded_parts(raw: bytes):
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    for at in range(0, len(raw), PIECE):
        try:
            yield decoder.decode(view[at:at + PIECE], final=at + PIECE >= len(raw))
        except UnicodeDecodeError as exc:
            raise UnicodeDecodeError(exc.encoding, raw, exc.start + at - len(
                decoder.getstate()[0]), exc.end + at, exc.reason) from None


def read_snapshot(path: str | Path, include_tests: bool = False,
                  data_paths: tuple[str | Path, ...] = ()) -> Snapshot:
    """Read every file; a file whose size or mtime moved while it was read is read again
    (a few times), so a snapshot never holds a file's half-written state as its own."""
    root = Path(path)
    sources: dict[str, str] = {}
    data: dict[str, str] = {}
    identities: dict[str, Identity] = {}
    policies = policy_files(root, include_tests)
    for file in policies + data_files(root, data_paths):
        for _attempt in range(5):
            try:
                before = file.stat()
                raw = file.read_bytes()
                ident = _identity(file, raw)
            except OSError as exc:
                raise PolicyError([Diagnostic.for_path(str(file), "E000", f"cannot read "
                                                       f"{file}: {exc.strerror or exc}")]
                                  ) from None
            if (before.st_size, before.st_mtime_ns) == ident[:2] and len(raw) == ident[0]:
                break
        else:
            raise PolicyError([Diagnostic.for_path(str(file), "E000", f"{file} kept changing "
                                                   "while it was read")])
        try:
            if file in policies:
                sources[str(file)] = decoded(raw)
            else:
                data[str(file)] = decoded_data(raw)
        except UnicodeDecodeError as exc:
            raise PolicyError([Diagnostic.for_path(str(file), "E000", f"cannot read {file}: "
                                                   f"not UTF-8 ({exc.reason} at byte "
                                                   f"{exc.start})")]) from None
        identities[str(file)] = ident
    if not sources:
        raise PolicyError([Diagnostic.for_path(str(root), "E000",
                                               f"no .policy files under {root}")])
    return Snapshot(root, sources, identities, data, tuple(map(str, data_paths)))


def unchanged(snapshot: Snapshot, include_tests: bool = False) -> bool:
    """True when the set on disk is still exactly the snapshot: the same files, each with
    the same size, mtime and content hash (checked after compiling, before installing)."""
    try:
        files = [str(f) for f in policy_files(snapshot.root, include_tests)
                 + data_files(snapshot.root, snapshot.data_paths)]
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


def version_of(sources: dict[str, str], root: str | Path | None = None,
               data: dict[str, str] | None = None,
               digests: dict[str, str] | None = None) -> str:
    """A digest of the set's source and entity data: each file's name (relative to the
    set's root; data outside the set by file name) and the sha256 of its UTF-8 text,
    taken from `digests` where the reader already computed it (a 100 MB data file is
    then hashed once)."""
    h = hashlib.sha256()
    base = Path(root) if root is not None and Path(root).is_dir() else None
    every = {**sources, **(data or {})}
    for path in sorted(every):
        inside = base is not None and Path(path).is_relative_to(base)
        name = str(Path(path).relative_to(base)) if inside else Path(path).name
        digest = (digests or {}).get(path) or \
            hashlib.sha256(as_text(every[path]).encode("utf-8", "surrogatepass")).hexdigest()
        h.update(name.encode() + b"\0" + digest.encode() + b"\0")
    return "sha256:" + h.hexdigest()[:16]
