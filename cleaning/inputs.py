"""Which files a run reads: `--input` files, folders (recursively) and glob patterns.

Folders are walked following symlinks, each directory at most once, so a symlink loop cannot hang
the walk (the standard library's recursive glob follows it forever). Nothing is skipped silently:
files of unsupported formats inside a folder, unreadable folders and loops come back as notes the
run prints once and keeps in summary.json.
"""

from __future__ import annotations

import glob
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cleaning.errors import CleaningError
from cleaning.readers import is_supported
from cleaning.remote import InputFile, RemoteFile, is_url, list_remote
from cleaning.remote import source_names as remote_source_names

FORMATS = ".jsonl/.json/.ndjson (plain, .gz, .zst, .bz2, .xz), .parquet or .warc/.wet (plain or compressed)"


@dataclass
class Inputs:
    files: list[InputFile]
    skipped: list[str] = field(default_factory=list)  # one line per kind of skipped input


def resolve_inputs(patterns: list[str]) -> Inputs:
    """Expand files, folders, globs and object-store URLs (`s3://bucket/prefix/*.jsonl.zst`) into a sorted
    list of input files (local ones absolute), and notes on what was left out."""
    found: set[Path] = set()
    remote: dict[str, RemoteFile] = {}
    walk = _Walk()
    for pattern in patterns:
        if is_url(pattern):
            listed = list_remote(pattern)
            if not listed:
                raise CleaningError(f"no input files match {pattern!r}")
            if [f.url for f in listed] == [pattern] and not is_supported(listed[0]):
                raise CleaningError(f"unsupported input format: {pattern} (use {FORMATS})")
            remote.update((f.url, f) for f in listed if walk.keep(f))
            continue
        pattern = os.path.expanduser(pattern)
        if glob.has_magic(pattern):
            matches = walk.glob(pattern)
            if not matches:
                raise CleaningError(f"no input files match {pattern!r}")
            found.update(p for p in matches if p.is_file() and walk.keep(p))
            continue
        path = Path(pattern)
        if path.is_dir():
            found.update(p for p in walk.files(path) if walk.keep(p))
        elif path.is_file():
            if not is_supported(path):
                raise CleaningError(f"unsupported input format: {path} (use {FORMATS})")
            found.add(path)
        else:
            raise CleaningError(f"input not found: {path}")
    if not found and not remote:
        raise CleaningError(f"no input files ({FORMATS}) in {patterns}" + walk.note())
    # Absolute paths: workers of a Ray cluster do not share the driver's working directory.
    files: list[InputFile] = [*{p.resolve() for p in found}, *remote.values()]
    return Inputs(sorted(files, key=str), walk.notes())


class _Walk:
    """A directory walk that follows symlinks, visits each directory once and remembers what it skipped."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()
        self.loops: list[str] = []
        self.unreadable: list[str] = []
        self.unsupported: Counter[str] = Counter()

    def files(self, root: Path) -> list[Path]:
        out: list[Path] = []
        self.seen = set()  # a loop is a folder met twice in one walk (two inputs may overlap)
        for folder, dirs, names in os.walk(root, followlinks=True, onerror=self._unreadable):
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in self.seen:
                self.loops.append(folder)
                dirs[:] = []
                continue
            self.seen.add((st.st_dev, st.st_ino))
            dirs.sort()
            out.extend(Path(folder) / name for name in sorted(names))
        return [p for p in out if p.is_file()]

    def glob(self, pattern: str) -> list[Path]:
        """Glob with `**`, over a walk that cannot loop: the fixed part of the pattern is walked, the rest
        matched as a regular expression on the relative path."""
        parts = Path(pattern).parts
        fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
        root = Path(*parts[:fixed]) if fixed else Path(".")
        rest = "/".join(parts[fixed:])
        if not root.is_dir():
            return []
        regex = re.compile(_translate(rest))
        candidates = self.files(root)
        dirs = {p.parent for p in candidates}
        matches = [p for p in candidates if regex.fullmatch(p.relative_to(root).as_posix())]
        matches += [d for d in dirs if d != root and regex.fullmatch(d.relative_to(root).as_posix())]
        out: list[Path] = []
        for m in matches:  # a pattern matching folders takes their files, as a folder argument does
            out.extend([p for p in candidates if m in p.parents] if m.is_dir() else [m])
        return out

    def keep(self, path: InputFile) -> bool:
        if is_supported(path):
            return True
        suffixes = PurePosixPath(path.name).suffixes
        self.unsupported["".join(suffixes[-2:]) or path.name] += 1
        return False

    def _unreadable(self, error: OSError) -> None:
        self.unreadable.append(f"{error.filename}: {error.strerror}")

    def notes(self) -> list[str]:
        notes = []
        if self.unsupported:
            kinds = ", ".join(f"{n} {kind}" for kind, n in self.unsupported.most_common(8))
            notes.append(f"skipped {_count(sum(self.unsupported.values()), 'file')} of unsupported formats ({kinds})")
        if self.unreadable:
            notes.append(
                f"skipped {_count(len(self.unreadable), 'unreadable folder')}: {'; '.join(self.unreadable[:5])}"
            )
        if self.loops:
            loops = ", ".join(self.loops[:5])
            notes.append(f"skipped {_count(len(self.loops), 'folder')} seen before (symlink loops): {loops}")
        return notes

    def note(self) -> str:
        return (" (" + "; ".join(self.notes()) + ")") if self.notes() else ""


def _translate(pattern: str) -> str:
    """A glob pattern on relative POSIX paths as a regular expression: `**/` any folders (or none),
    `*` and `?` within one path component, `[...]` as written."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def source_names(paths: list[InputFile]) -> list[str]:
    """Input names relative to their common folder: stable ids however the run is invoked. Objects in a
    store are named relative to their common prefix folder, so a run on `s3://b/crawl/` names its
    sources as a run on a local copy of `crawl/` does (and writes the same bytes); a run mixing local
    and remote inputs names each by its full path or URL."""
    if all(isinstance(p, RemoteFile) for p in paths):
        return remote_source_names([str(p) for p in paths])
    if any(isinstance(p, RemoteFile) for p in paths):
        return [str(p) for p in paths]
    resolved = [p.resolve() for p in paths]  # type: ignore[union-attr]
    root = Path(os.path.commonpath([p.parent for p in resolved]))
    return [str(p.relative_to(root)) for p in resolved]


PACK_MIN_GROUPS = 256  # small files are packed, but into at least this many groups (parallelism)


def file_groups(paths: list[InputFile], sources: list[str], shard_bytes: int) -> list[list[tuple[InputFile, str, Any]]]:
    """Consecutive input files, grouped while their sizes add up to at most a shard, or to 1/256 of
    the input if that is less: one task and its shards per group, so 100,000 small files make a few
    hundred shards, not 100,000, while a few files still make a task each."""
    stats = [path.stat() for path in paths]
    target = min(shard_bytes, max(1, sum(st.st_size for st in stats) // PACK_MIN_GROUPS))
    groups: list[list[tuple[InputFile, str, Any]]] = []
    size = 0
    for path, source, st in zip(paths, sources, stats, strict=True):
        if not groups or size + st.st_size > target:
            groups.append([])
            size = 0
        groups[-1].append((path, source, st))
        size += st.st_size
    return groups


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
