"""Which files a run reads: folders followed through symlinks without looping, nothing skipped silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cleaning.errors import CleaningError
from cleaning.inputs import _translate, resolve_inputs
from tests.conftest import NORMALIZE_ONLY, ROOT


def doc(path: Path, i: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"id": f"{path.name}-{i}", "text": "本文です。"}, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "crawl"
    doc(root / "a.jsonl")
    doc(root / "sub" / "b.jsonl")
    (root / "notes.txt").write_text("not input")
    (root / "sub" / "table.csv").write_text("a,b")
    outside = doc(tmp_path / "elsewhere" / "c.jsonl").parent
    os.symlink(outside, root / "linked")  # a symlinked folder is followed
    os.symlink(root, root / "sub" / "loop")  # a loop back to the top
    return root


def test_a_folder_is_walked_through_symlinks_once_and_skips_are_reported(tree: Path) -> None:
    found = resolve_inputs([str(tree)])
    assert sorted(p.name for p in found.files) == ["a.jsonl", "b.jsonl", "c.jsonl"]
    notes = " ".join(found.skipped)
    assert "2 files of unsupported formats" in notes and ".txt" in notes and ".csv" in notes
    assert "symlink loops" in notes


def test_a_recursive_glob_over_a_symlink_loop_finishes(tree: Path) -> None:
    found = resolve_inputs([str(tree / "**" / "*.jsonl")])
    assert sorted(p.name for p in found.files) == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert [p.name for p in resolve_inputs([str(tree / "*.jsonl")]).files] == ["a.jsonl"]
    with pytest.raises(CleaningError, match="no input files match"):
        resolve_inputs([str(tree / "*.parquet")])


def test_glob_translation() -> None:
    import re

    def match(pattern: str, path: str) -> bool:
        return re.fullmatch(_translate(pattern), path) is not None

    assert match("**/*.jsonl", "a.jsonl") and match("**/*.jsonl", "x/y/a.jsonl")
    assert match("*.jsonl", "a.jsonl") and not match("*.jsonl", "x/a.jsonl")
    assert match("part-[0-9].jsonl.gz", "part-3.jsonl.gz") and not match("part-[!0-9].jsonl.gz", "part-3.jsonl.gz")
    assert match("a?.jsonl", "ab.jsonl") and not match("a?.jsonl", "a/.jsonl")


def test_the_run_says_what_it_skipped_once_and_keeps_it_in_the_summary(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cleaning", "run", str(NORMALIZE_ONLY), "--input", str(tree), "--output", str(out)]
    result = subprocess.run([*cmd, "--no-ray"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("files of unsupported formats") == 1
    summary = json.loads((out / "summary.json").read_text())
    assert any("unsupported formats" in note for note in summary["skipped_inputs"])
    assert summary["conservation"]["records_in"] == 3
