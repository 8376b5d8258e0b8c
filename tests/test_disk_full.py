"""Disk full: one clear line, exit 1, and a rerun with space again gives the same bytes as a run
that never failed (no truncated artifact is trusted). Needs root to mount a small tmpfs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PIPELINE, ROOT, SAMPLE, parquet_files


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2500k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def clean(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleaning", *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def data_files(out: Path) -> dict[str, bytes]:
    """Shards, rejects and token files: what `cleaning run` writes (the sample run also has a report)."""
    tokens = {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "tokens").rglob("*.bin"))}
    shards = {k: v for k, v in parquet_files(out).items() if not k.startswith("report/")}
    assert shards and tokens
    return shards | tokens


def test_disk_full_is_one_line_and_the_rerun_gives_the_same_bytes(small_disk: Path, sample_run: Path) -> None:
    out = small_disk / "out"
    args = ["run", str(PIPELINE), "--input", str(SAMPLE), "--output", str(out), "--no-ray"]
    failed = clean(*args)
    assert failed.returncode == 1, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: no space left on the device ({out}): free some space and rerun the same command; "
        "finished shards are kept and unfinished ones are redone"
    ), failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (out / "summary.json").exists()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = clean(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "all 3 files done earlier" in resumed.stderr, "what was finished before the disk filled is kept"
    assert data_files(out) == data_files(sample_run)
