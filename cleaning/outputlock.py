"""One run per output folder: two runs on one `--output` would write the same temporary names.

The lock is `flock` on `OUTPUT/.lock`, so the kernel releases it when the holder dies (even by
`kill -9`): a stale lock file never blocks a rerun. The file says who holds it, for the message.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from cleaning.errors import CleaningError


class OutputBusy(CleaningError):
    """Another run holds the output folder. Exit code 1: nothing is wrong with the command."""

    exit_code = 1


class OutputLock:
    NAME = ".lock"

    def __init__(self, output: Path, before: Callable[[], None] | None = None) -> None:
        self.output = output
        self.before = before  # checks to make before the folder (and the lock file in it) is created
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        if self.before is not None:
            self.before()
        self.output.mkdir(parents=True, exist_ok=True)
        path = self.output / self.NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise OutputBusy(
                f"output {self.output} is in use by another run ({holder}); wait for it to finish "
                "or choose another --output"
            ) from None
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:300]
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}: {command}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
