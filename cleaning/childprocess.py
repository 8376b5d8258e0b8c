"""Run a long native call (fastText or sentencepiece training) in a fresh Python process.

Two reasons. Ctrl-C: a native call in the driver holds the signal until it returns, minutes on a
large sample, while waiting on a child is interrupted at once (the child is then killed). And
fastText: a fresh process makes its training byte-reproducible (see quality/model.py).
Errors come back as what they were: a `CleaningError` or an `OSError` (disk full) is raised again
here with its message; anything else becomes one line naming the step.
"""

from __future__ import annotations

import errno
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from cleaning.errors import CleaningError

_MARK = "@@cleaning-child-error@@ "


class ChildFailed(CleaningError):
    """The child raised something unexpected (fastText's "Encountered NaN" is one: callers retry)."""


def call(target: str, *args: Any, what: str) -> None:
    """Call `module:function(*args)` (JSON-serialisable args) in a child process and wait for it."""
    code = "import sys; from cleaning.childprocess import _child; _child(sys.argv[1], sys.argv[2])"
    child = subprocess.Popen(
        [sys.executable, "-c", code, target, json.dumps(args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = child.communicate()
    except BaseException:  # Ctrl-C (or any error here): the child must not outlive the wait
        child.kill()
        child.wait()
        raise
    if child.returncode == 0:
        return
    lines = stderr.strip().splitlines()
    for line in reversed(lines):
        if line.startswith(_MARK):
            error = json.loads(line[len(_MARK) :])
            if error["kind"] == "OSError":
                raise OSError(error["errno"], error["message"], error["filename"])
            if error["kind"] == "CleaningError":
                raise CleaningError(error["message"])
            raise ChildFailed(f"{what} failed: {error['message']}")
    last = lines[-1] if lines else f"the process ended with code {child.returncode}"
    raise ChildFailed(f"{what} failed: {last}")


def check_saved(path: Path, load: Any) -> None:
    """Read a just-saved model back: fastText writes a truncated file without an error when the disk
    fills, and a model that cannot be read must fail the step, not be trusted by a rerun."""
    try:
        load(str(path))
    except Exception as exc:
        if shutil.disk_usage(path.parent).free < 1 << 20:
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from exc
        raise CleaningError(f"the saved model {path} cannot be read back: {exc}") from exc


def _child(target: str, args: str) -> None:
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    try:
        function(*json.loads(args))
    except OSError as exc:
        _report({"kind": "OSError", "errno": exc.errno, "message": exc.strerror or str(exc), "filename": exc.filename})
    except CleaningError as exc:
        _report({"kind": "CleaningError", "message": str(exc)})
    except Exception as exc:
        _report({"kind": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}"})


def _report(error: dict[str, Any]) -> None:
    print(_MARK + json.dumps(error, ensure_ascii=False), file=sys.stderr)
    sys.exit(1)
