"""A run's output in object storage (`--output s3://bucket/run`): the store holds the run, each node
keeps a local copy (the work folder) that the stages read and write as files.

Object stores have no rename, but an object written by one PUT (or one completed multipart upload)
appears whole or not at all. So a file is published by uploading it once it is complete on local
disk, and a unit of work uploads its shards before its marker: a marker in the store means its
shards are there. A rerun on any machine trusts only what is in the store: it reads the markers
from there and fetches a shard when a task needs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cleaning.errors import CleaningError
from cleaning.remote import CREDENTIALS_HINT, error_reason, filesystem, is_url

LEASE = ".lock"  # in the store: the lease of the run writing it (storelock)
CLAIM = ".store"  # in a work folder: the URL of the run it is a copy of
WORK_HOME = "CLEANING_WORK"  # where copies of runs in object storage go by default
NODE_WORK = "CLEANING_NODE_WORK"  # on a node of a cluster: its own work folder, if not the driver's path
SHARDS = "shards"  # stage folders whose files are fetched on demand, not when a run starts


@dataclass(frozen=True)
class RunStore:
    """Where a run lives in the store (`url`), and this machine's copy of it (`local`)."""

    url: str
    local: Path

    @classmethod
    def open(cls, url: str, local: Path) -> RunStore:
        url = url.rstrip("/")
        if "/" not in filesystem(url)[1].strip("/"):
            raise CleaningError(f"--output {url}: name a bucket and a folder in it, e.g. s3://bucket/runs/ja")
        return cls(url, local.resolve())

    @property
    def fs(self) -> Any:
        return filesystem(self.url)[0]  # fsspec keeps one instance per process and options

    @property
    def root(self) -> str:
        return filesystem(self.url)[1].rstrip("/")

    def here(self) -> RunStore:
        """This store as seen from the current node: its own work folder when `CLEANING_NODE_WORK`
        says so (nodes of a cluster need no shared filesystem)."""
        node = os.environ.get(NODE_WORK)
        return replace(self, local=Path(node)) if node and Path(node) != self.local else self

    def key(self, path: Path) -> str:
        return f"{self.root}/{path.relative_to(self.local).as_posix()}"

    def url_of(self, path: Path) -> str:
        return f"{self.url}/{path.relative_to(self.local).as_posix()}"

    # -- reading the store ------------------------------------------------------------

    def listing(self, under: Path | None = None) -> dict[Path, int]:
        """Every object of the run (or under one folder of it) as a local path, with its size."""
        folder = self.root if under is None else self.key(under)
        try:
            self.fs.invalidate_cache()
            infos = self.fs.find(folder, detail=True)
        except FileNotFoundError:
            return {}
        except Exception as exc:  # botocore raises its own types: no credentials, no bucket, denied
            raise self._error("list", self.url, exc) from exc
        prefix = self.root + "/"
        return {
            self.local / key.removeprefix(prefix): int(info.get("size") or 0)
            for key, info in infos.items()
            if info.get("type") != "directory" and key.startswith(prefix) and key != prefix + LEASE
        }

    def pull(self, paths: Iterable[Path]) -> None:
        """Download objects to their local paths (each under a temporary name, then renamed)."""
        paths = list(paths)
        if not paths:
            return
        tmps = [p.with_name(f"{p.name}.{uuid.uuid4().hex[:8]}.part") for p in paths]
        for tmp in tmps:
            tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get([self.key(p) for p in paths], [str(t) for t in tmps])
            for tmp, path in zip(tmps, paths, strict=True):
                os.replace(tmp, path)
        except Exception as exc:
            for tmp in tmps:
                tmp.unlink(missing_ok=True)
            raise self._error("read", self.url_of(paths[0]), exc) from exc

    def pull_missing(self, paths: Iterable[Path]) -> None:
        """Download those of `paths` this copy lacks (shards made on another node or machine)."""
        self.pull(p for p in paths if not p.is_file())

    def pull_tree(self, folder: Path) -> None:
        """A whole folder, when this copy lacks it: fetched beside it, then renamed into place."""
        if folder.is_dir():
            return
        files = self.listing(folder)
        if not files:  # a store keeps no empty folders
            folder.mkdir(parents=True, exist_ok=True)
            return
        staging = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.part")
        moved = {staging / p.relative_to(folder): p for p in files}
        try:
            for target in moved:
                target.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get([self.key(p) for p in moved.values()], [str(t) for t in moved])
            with contextlib.suppress(OSError):  # another task on this node fetched it first
                staging.rename(folder)
        except Exception as exc:
            raise self._error("read", self.url_of(folder), exc) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- writing the store ------------------------------------------------------------

    def push(self, paths: Iterable[Path]) -> None:
        """Publish local files, in order: each object appears complete or not at all."""
        for path in paths:
            try:
                self.fs.put_file(str(path), self.key(path))
            except Exception as exc:
                raise self._error("write", self.url_of(path), exc) from exc

    def delete(self, paths: Iterable[Path]) -> None:
        keys = [self.key(p) for p in paths]
        if not keys:
            return
        try:
            self.fs.rm(keys)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._error("delete in", self.url, exc) from exc

    def claim(self) -> None:
        """Mark the work folder as this run's copy; a folder holding another run's copy is refused."""
        note = self.local / CLAIM
        if note.is_file() and note.read_text().strip() != self.url:
            raise CleaningError(
                f"work folder {self.local} is the copy of {note.read_text().strip()}, not of {self.url}; "
                "choose another --work"
            )
        if not note.is_file() and self.local.is_dir() and any(self.local.iterdir()):
            raise CleaningError(
                f"work folder {self.local} is not empty and holds no copy of a run; choose another --work"
            )
        self.local.mkdir(parents=True, exist_ok=True)
        note.write_text(self.url + "\n")

    def _error(self, verb: str, where: str, exc: BaseException) -> CleaningError:
        hint = CREDENTIALS_HINT if isinstance(exc, PermissionError) or "credential" in str(exc).lower() else ""
        return CleaningError(f"cannot {verb} {where}: {error_reason(exc)}{hint}")


def check_bucket(store: RunStore) -> None:
    """Fail early, in one line, when the bucket is missing or the credentials do not work."""
    bucket = store.root.split("/", 1)[0]
    try:
        store.fs.invalidate_cache()
        store.fs.ls(bucket, detail=False)
    except FileNotFoundError as exc:
        raise CleaningError(f"output bucket not found: {store.url} ({error_reason(exc)})") from exc
    except Exception as exc:
        raise store._error("write to", store.url, exc) from exc


def default_work(url: str) -> Path:
    """This machine's copy of a run in object storage: under `$CLEANING_WORK`, else ~/.cache/cleaning."""
    home = Path(os.environ.get(WORK_HOME) or Path.home() / ".cache" / "cleaning" / "runs")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[-1].rstrip("/"))[-80:]
    return home / f"{name}-{hashlib.sha256(url.rstrip('/').encode()).hexdigest()[:8]}"


def readable_copy(output: str, work: Path | None = None) -> tuple[Path, RunStore | None]:
    """A finished run to read (`cleaning report`, `cleaning eval`): a local folder as given; for a
    run in object storage, this machine's copy, with whatever it lacks fetched from the store."""
    if not is_url(output):
        return Path(output), None
    store = RunStore.open(output, work or default_work(output))
    check_bucket(store)
    listed = store.listing()
    if store.local / "summary.json" not in listed:
        raise CleaningError(f"no finished run in {store.url} (missing summary.json); run `cleaning run` first")
    store.claim()
    store.pull(p for p, size in listed.items() if not p.is_file() or p.stat().st_size != size)
    return store.local, store
