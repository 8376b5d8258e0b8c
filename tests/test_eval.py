"""`cleaning eval`: a run scored against line-labelled pages, checked against a plain recount."""

from __future__ import annotations

import io
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from cleaning.errors import CleaningError
from cleaning.evaluation.align import align_page
from cleaning.evaluation.evaluate import evaluate
from cleaning.evaluation.runread import Fate
from cleaning.evaluation.score import score
from cleaning.pagelabels import PageLabel
from cleaning.pipeline import load_pipeline
from cleaning.runner import Runner, RunOptions
from tests.conftest import ROOT, RULES_ONLY
from tests.pages import labelled_corpus

HARD_RULES_ONLY = "rules.disable=[lines.model, doc.page_model]"  # output predictable from the patterns


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("eval")
    corpus, labels = labelled_corpus(folder / "data")
    out = folder / "out"
    opts = RunOptions([str(corpus)], out, use_ray=False, progress=False)
    Runner(load_pipeline(RULES_ONLY, [HARD_RULES_ONLY]), opts, Console(file=io.StringIO())).run()
    return corpus, labels, out


def recount(corpus: Path, labels: Path, out: Path) -> dict[str, float]:
    """The five figures counted directly: every line of these pages is unique and unchanged by NFKC."""
    kept_text = {
        r["id"]: set(r["text"].split("\n"))
        for f in (out / "02-rules" / "shards").glob("*.parquet")
        for r in pq.read_table(f).to_pylist()
    }
    pages = {json.loads(x)["id"]: json.loads(x) for x in corpus.read_text(encoding="utf-8").splitlines()}
    kept_chars = wanted = content = content_kept = 0
    b_left, kept_pages, keep_kept, keep_pages = [], 0, 0, 0
    for line in labels.read_text(encoding="utf-8").splitlines():
        lab = json.loads(line)
        lines = pages[lab["id"]]["text"].split("\n")
        kept = kept_text.get(lab["id"], set())
        verdict = lab["page"]
        keep_pages += verdict == "KEEP"
        if kept:
            kept_pages += 1
            keep_kept += verdict == "KEEP"
        b = 0
        for text, label in zip(lines, lab["labels"], strict=True):
            is_kept = text in kept
            kept_chars += len(text) * is_kept
            wanted += len(text) * (is_kept and label in "CN" and verdict != "DROP")
            if label == "C" and verdict == "KEEP":
                content += len(text)
                content_kept += len(text) * is_kept
            b += is_kept and label == "B"
        if kept and verdict == "KEEP":
            b_left.append(b)
    return {
        "purity": wanted / kept_chars,
        "content_recall": content_kept / content,
        "page_precision": keep_kept / kept_pages,
        "page_recall": keep_kept / keep_pages,
        "boilerplate_lines_mean": statistics.fmean(b_left),
        "boilerplate_lines_median": statistics.median(b_left),
    }


def test_figures_match_a_direct_recount(scored_run: tuple[Path, Path, Path]) -> None:
    corpus, labels, out = scored_run
    result = evaluate(out, [labels])
    expected = recount(corpus, labels, out)
    for name, value in expected.items():
        assert getattr(result.scores, name) == pytest.approx(value), name
    assert 0 < result.scores.purity < 1 and result.scores.boilerplate_lines_mean > 0, "a case with errors to find"
    assert result.scores.pages == 30 and result.scores.left_out == {}


def test_a_run_folder_moved_elsewhere_scores_the_same(scored_run: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """summary.json names the final shards where the run wrote them; a copied run reads its own."""
    _, labels, out = scored_run
    expected = evaluate(out, [labels]).scores.as_dict()
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    final = sorted(p for p in out.iterdir() if p.name[:2].isdigit())[-1] / "shards"
    hidden = final.with_name("shards-hidden")
    final.rename(hidden)  # the original's shards are gone: only the copy's can be read
    try:
        assert evaluate(moved, [labels]).scores.as_dict() == expected
    finally:
        hidden.rename(final)


def test_lost_content_is_attributed_to_the_rule_or_reason(scored_run: tuple[Path, Path, Path]) -> None:
    _, labels, out = scored_run
    result = evaluate(out, [labels])
    rejected = [r for r in result.results if r.status == "rejected"]
    assert rejected, "navigation shells are rejected"
    for r in rejected:
        assert not any(r.kept) and r.reason
    kept = [r for r in result.results if r.is_kept]
    reasons = {why for r in kept for why, k in zip(r.removed_by, r.kept, strict=True) if not k}
    assert {"menu.block", "footer.copyright"} <= reasons, reasons


def test_cli_writes_json_and_html_and_shows_a_page(scored_run: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, labels, out = scored_run
    result = subprocess.run(
        [sys.executable, "-m", "cleaning", "eval", str(out), str(labels), "--dest", str(tmp_path), "--show", "s0p1"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "purity" in result.stdout and "s0p1" in result.stdout
    data = json.loads((tmp_path / "eval.json").read_text())
    assert set(data["scores"]) >= {"purity", "content_recall", "page_precision", "page_recall"}
    assert len(data["pages"]) == 30
    html = (tmp_path / "eval.html").read_text(encoding="utf-8")
    assert html.count("class=page ") == 30 and "山中工務店" in html
    missing = subprocess.run([sys.executable, "-m", "cleaning", "eval", str(tmp_path / "nope"), str(labels)],
                             capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert missing.returncode == 2 and "not a run's output folder" in missing.stderr


def test_cli_compares_with_a_run_before_a_change(scored_run: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """Without menu.block, menus stay: against that run, purity is clearly better, recall no worse."""
    corpus, labels, out = scored_run
    before = tmp_path / "before"
    opts = RunOptions([str(corpus)], before, use_ray=False, progress=False)
    overrides = ["rules.disable=[lines.model, doc.page_model, menu.block]"]
    Runner(load_pipeline(RULES_ONLY, overrides), opts, Console(file=io.StringIO())).run()
    result = subprocess.run(
        [sys.executable, "-m", "cleaning", "eval", str(out), str(labels), "--dest", str(tmp_path / "e"),
         "--against", str(before)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "95% interval" in result.stdout and "against" in result.stdout
    data = json.loads((tmp_path / "e" / "eval.json").read_text())
    lo, hi = data["intervals_95"]["purity"]
    assert lo <= data["scores"]["purity"] <= hi
    figures = data["against"]["figures"]
    assert data["against"]["pages"] == 30
    assert figures["purity"]["difference"] > 0 and figures["purity"]["verdict"] == "better", figures["purity"]
    assert figures["content_recall"]["verdict"] != "worse", figures["content_recall"]
    html = (tmp_path / "e" / "eval.html").read_text(encoding="utf-8")
    assert "95% interval" in html and f"Against {before}" in html
    # without its menus a shell around a short text is mostly boilerplate, so doc.little_content
    # rejects it; no KEEP page changes fate
    changed = data["against"]["changed_fate"]
    assert changed and all(c["verdict"] != "KEEP" and c["this"] == "rules:doc.little_content" for c in changed), changed


def test_duplicates_are_left_out_and_unmatched_text_counts_against_purity() -> None:
    page = PageLabel("p", "BCC", "KEEP", "x:1", "ホーム\n本文の一行目です。\n本文の二行目です。")
    normalize = lambda s: [s] if s.strip() else []  # noqa: E731
    dup = align_page(page, Fate(stage="dedup", reason="dedup.exact"), normalize, None)
    assert dup.status == "duplicate"
    kept = align_page(page, Fate(kept_text="本文の一行目です。\n誰も書いていない行"), normalize, None)
    assert kept.kept == [False, True, False] and kept.unmatched_chars == len("誰も書いていない行")
    scores = score([dup, kept])
    assert scores.left_out == {"duplicate": 1} and scores.pages == 1
    assert scores.purity == pytest.approx(9 / (9 + 9)) and scores.content_recall == pytest.approx(0.5)


def test_labels_for_pages_not_in_the_run_are_an_error(scored_run: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, _, out = scored_run
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "elsewhere", "page": "KEEP", "labels": "C"}) + "\n")
    with pytest.raises(CleaningError, match="none of the 1 labelled pages is in the run"):
        evaluate(out, [other])
