"""normalize over real crawl pages and clean text from ../shared (skipped when it is absent)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from cleaning.pipeline import load_pipeline
from cleaning.runner import Runner, RunOptions
from tests.conftest import NORMALIZE_ONLY, output_ids
from tests.test_runner import input_ids

pytestmark = pytest.mark.shared


def run(inputs: list[Path], out: Path) -> dict:
    opts = RunOptions([str(p) for p in inputs], out, use_ray=False, progress=False)
    return Runner(load_pipeline(NORMALIZE_ONLY, ["input.shard_mb=8"]), opts, Console(file=io.StringIO())).run()


def test_real_crawl_pages_are_conserved(tmp_path: Path, shared_data: Path) -> None:
    pages = shared_data / "web" / "cc-main-2023-50_ja_pages.jsonl.gz"
    summary = run([pages], tmp_path / "out")
    kept, rejected = output_ids(tmp_path / "out")
    assert kept + rejected == input_ids([pages])
    assert summary["stages"][0]["shards"] > 1, "26 MB of text is split into 8 MB shards"
    normalize = summary["stages"][1]
    assert normalize["counters"]["invisible_chars_removed"] > 0


def test_clean_text_is_not_rejected(tmp_path: Path, shared_data: Path) -> None:
    clean = shared_data / "clean" / "ku_wikipedia_leads.jsonl.gz"
    summary = run([clean], tmp_path / "out")
    assert summary["stages"][1]["rejected_total"] == 0
    assert summary["conservation"]["kept"] == summary["conservation"]["records_in"]
