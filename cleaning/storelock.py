"""One driver per run in object storage: the `flock` of `outputlock` guards only this machine's copy.

The lock is a lease, the object `<run>/.lock`, created with a conditional write (If-None-Match: *)
so that of two runs starting at once only one gets it. Its holder rewrites it every `renew` seconds
with If-Match on its own ETag. A lease not renewed for `stale` seconds, or held by a process of this
host that is gone (a run killed with `kill -9`), belongs to a dead run and is taken over with If-Match
on its ETag, so again only one run wins. Machines are assumed to keep their clocks in sync (NTP).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from cleaning.errors import CleaningError
from cleaning.outputlock import OutputBusy
from cleaning.runstore import LEASE, RunStore


class StoreLock:
    def __init__(self, store: RunStore, renew: float = 30.0, stale: float = 120.0) -> None:
        self.store = store
        self.key = f"{store.root}/{LEASE}"
        self.renew = renew
        self.stale = stale
        self._etag = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = ""  # why the lease was lost while running, if it was

    def __enter__(self) -> StoreLock:
        fs = self.store.fs
        try:
            self._etag = fs.pipe_file(self.key, self._body(), mode="create")["ETag"]
        except FileExistsError:
            self._take_over()
        self._thread = threading.Thread(target=self._keep, name="store-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost:
            with contextlib.suppress(Exception):  # a lease left behind goes stale; the run itself is done
                self.store.fs.rm(self.key)
        elif exc is None:
            raise CleaningError(f"{self.lost}; another run may have written to {self.store.url}: rerun to check it")

    def _body(self) -> bytes:
        command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:300]
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "renewed": time.time(), "command": command}
        return json.dumps(holder).encode()

    def _take_over(self) -> None:
        fs = self.store.fs
        fs.invalidate_cache(self.key)
        info = fs.info(self.key)
        try:
            holder = json.loads(fs.cat_file(self.key))
        except (ValueError, FileNotFoundError):
            holder = {}
        age = time.time() - float(holder.get("renewed", 0))
        here = holder.get("host") == socket.gethostname()
        if age < self.stale and not (here and not _alive(int(holder.get("pid", 0)))):
            who = f"pid {holder.get('pid')} on {holder.get('host')}, renewed {age:.0f} s ago: {holder.get('command')}"
            raise OutputBusy(
                f"output {self.store.url} is in use by another run ({who}); wait for it to finish "
                f"or choose another --output (a lease not renewed for {self.stale:.0f} s is taken over)"
            )
        try:
            self._etag = fs.pipe_file(self.key, self._body(), IfMatch=info["ETag"])["ETag"]
        except OSError as exc:
            if _precondition(exc):  # another run took it over first
                raise OutputBusy(f"output {self.store.url} was just taken over by another run") from None
            raise

    def _keep(self) -> None:
        while not self._stop.wait(self.renew):
            try:
                self._etag = self.store.fs.pipe_file(self.key, self._body(), IfMatch=self._etag)["ETag"]
            except Exception as exc:  # a network error is retried at the next beat
                if _precondition(exc):
                    self.lost = f"the lease on {self.store.url} was taken over during this run"
                    return


def _precondition(exc: BaseException) -> bool:
    """S3 refused a conditional write (HTTP 412): the lease is not what this run last wrote."""
    return "pre-condition" in str(exc) or "PreconditionFailed" in str(exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0
