"""One generated hostile corpus (tests/hostile.py) through the whole default pipeline: every
record accounted for, each bad one with its own reject row and a one-line warning naming file and
line, no traceback, and a rerun with nothing to do."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import PIPELINE, ROOT
from tests.hostile import MAX_DOC_MB, check_run, make_hostile_corpus


def test_a_hostile_corpus_runs_through_with_every_record_accounted_for(tmp_path: Path) -> None:
    expected = make_hostile_corpus(tmp_path / "in")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "cleaning", "run", str(PIPELINE), "--input", str(tmp_path / "in")]
    args += ["--output", str(out), "--no-ray", "--set", f"input.max_doc_mb={MAX_DOC_MB}"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    check_run(out, expected)
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    for line in warnings:
        assert re.match(r"^warning: [\w.]+:\d+: [a-z0-9_]+: \S", line), line
    warned = {tuple(re.match(r"^warning: ([\w.]+):(\d+):", w).groups()) for w in warnings}  # type: ignore[union-attr]
    quarantined = {(source, str(line)) for source, lines in expected.rejects.items() for line in lines}
    assert quarantined <= warned, f"quarantined without a warning: {sorted(quarantined - warned)}"
    assert "input: skipped 1 file of unsupported formats (1 .txt)" in done.stderr

    again = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
