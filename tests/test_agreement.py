"""`cleaning annotations agree`: two labellings of the same pages compared, and the second scored as a
cleaner against the first."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from sklearn.metrics import cohen_kappa_score

from cleaning.errors import CleaningError
from cleaning.evaluation.agreement import agreement, compare_labellings
from cleaning.pagelabels import PageLabel
from cleaning.pipeline import load_pipeline
from cleaning.runner import Runner, RunOptions
from tests.conftest import ROOT, RULES_ONLY, SHARED
from tests.pages import labelled_corpus


def plain(line: str) -> list[str]:
    return [line.strip()] if line.strip() else []


def labelled_pages(folder: Path) -> list[PageLabel]:
    corpus, labels = labelled_corpus(folder)
    texts = {d["id"]: d["text"] for d in map(json.loads, corpus.read_text(encoding="utf-8").splitlines())}
    records = map(json.loads, labels.read_text(encoding="utf-8").splitlines())
    return [PageLabel(r["id"], r["labels"], r["page"], "x", texts[r["id"]]) for r in records]


def second_reading(pages: list[PageLabel]) -> tuple[list[PageLabel], str, int]:
    """A copy where the first KEEP page becomes BORDER and, on every KEEP page, the first boilerplate
    line after the title is read as content; returns the changed page's id and the characters relabelled."""
    out, changed, moved = [], "", 0
    for page in pages:
        labels = list(page.labels)
        verdict = page.verdict
        if verdict == "KEEP":
            i = labels.index("B")
            labels[i] = "C"
            moved += len(page.lines()[i].strip())
            if not changed:
                verdict, changed = "BORDER", page.id
        out.append(PageLabel(page.id, "".join(labels), verdict, "y", page.text))
    return out, changed, moved


def test_identical_labellings_agree_fully_and_score_perfectly(tmp_path: Path) -> None:
    pages = labelled_pages(tmp_path)
    result = agreement(pages, pages, plain)
    assert result.pages == 30 and result.only_first == result.only_second == 0
    assert result.line_agreement == 1.0 and result.verdict_kappa == pytest.approx(1.0)
    scores, _ = result.scored["second reading: its KEEP pages, C and N lines"]
    assert (scores.purity, scores.content_recall, scores.page_precision, scores.page_recall) == (1.0, 1.0, 1.0, 1.0)
    assert scores.boilerplate_lines_mean == 0


def test_disagreements_are_counted_and_scored(tmp_path: Path) -> None:
    pages = labelled_pages(tmp_path)
    second, _, moved = second_reading(pages)
    result = agreement(pages, second, plain)
    firsts = [p.verdict for p in pages]
    seconds = [p.verdict for p in second]
    assert result.verdicts[("KEEP", "BORDER")] == 1
    assert result.verdict_kappa == pytest.approx(cohen_kappa_score(firsts, seconds))
    a, b, w = [], [], []
    for p, q in zip(pages, second, strict=True):
        for x, y, line in zip(p.labels, q.labels, p.lines(), strict=True):
            a.append(x)
            b.append(y)
            w.append(len(line.strip()))
    assert result.line_chars[("B", "C")] == moved > 0
    assert result.line_kappa == pytest.approx(cohen_kappa_score(a, b, sample_weight=w))

    keep_only, _ = result.scored["second reading: its KEEP pages, C and N lines"]
    keep_pages = [p for p in pages if p.verdict == "KEEP"]
    assert keep_only.page_recall == pytest.approx((len(keep_pages) - 1) / len(keep_pages))
    assert keep_only.page_precision == 1.0  # its KEEP pages are KEEP pages
    kept = [(p, q) for p, q in zip(pages, second, strict=True) if q.verdict == "KEEP"]
    kept_chars = sum(len(s.strip()) for p, q in kept for s, lab in zip(p.lines(), q.labels, strict=True) if lab in "CN")
    boilerplate = sum(
        len(s.strip())
        for p, q in kept
        for s, a, b in zip(p.lines(), p.labels, q.labels, strict=True)
        if b in "CN" and a == "B"
    )
    assert keep_only.purity == pytest.approx(1 - boilerplate / kept_chars)
    with_border, _ = result.scored["second reading: its KEEP and BORDER pages"]
    assert with_border.page_recall == 1.0 and with_border.content_recall == 1.0


def test_pages_with_other_line_counts_are_left_out_and_named(tmp_path: Path) -> None:
    pages = labelled_pages(tmp_path)
    other = [PageLabel(pages[0].id, pages[0].labels + "B", pages[0].verdict, "z", pages[0].text + "\nfooter")]
    other += [PageLabel("elsewhere", "C", "KEEP", "z", "本文です。")]
    result = agreement(pages, other, plain)
    assert result.pages == 0 and result.mismatched == [pages[0].id]
    assert result.only_first == 29 and result.only_second == 1


def test_cli_compares_reference_records_through_a_run(tmp_path: Path) -> None:
    corpus, labels = labelled_corpus(tmp_path / "data")
    pages = labelled_pages(tmp_path / "again")  # the same pages (same seed), with their text
    second, _, _ = second_reading(pages)
    second_file = tmp_path / "second.jsonl"
    second_file.write_text(
        "".join(json.dumps({"id": p.id, "labels": p.labels, "page": p.verdict}) + "\n" for p in second),
        encoding="utf-8",
    )
    with pytest.raises(CleaningError, match=r"have no text \(give --run"):
        compare_labellings([labels], [second_file])
    out = tmp_path / "out"
    opts = RunOptions([str(corpus)], out, use_ray=False, progress=False)
    Runner(load_pipeline(RULES_ONLY, []), opts, Console(file=io.StringIO())).run()
    cmd = [sys.executable, "-m", "cleaning", "annotations", "agree", str(labels), str(second_file)]
    result = subprocess.run(
        [*cmd, "--run", str(out), "--out", str(tmp_path / "agree.json")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Cohen's kappa" in result.stdout and "the run" in result.stdout
    data = json.loads((tmp_path / "agree.json").read_text(encoding="utf-8"))
    assert data["pages"] == 30 and data["verdicts"]["KEEP/BORDER"] == 1
    assert next(iter(data["figures_against_first"])) == "the run (30 pages)"
    bare = subprocess.run([*cmd], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bare.returncode == 2 and "give --run" in bare.stderr and "Traceback" not in bare.stderr


def test_reference_records_are_read_from_their_source_file(tmp_path: Path) -> None:
    corpus, labels = labelled_corpus(tmp_path / "data")
    with_source = tmp_path / "data" / "with_source.jsonl"
    records = [json.loads(line) | {"source": corpus.name} for line in labels.read_text(encoding="utf-8").splitlines()]
    with_source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    result = compare_labellings([labels], [with_source])  # the first has no source: the second's text serves both
    assert result.pages == 30 and result.line_agreement == 1.0
    records[0]["source"] = "missing.jsonl"
    with_source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with pytest.raises(CleaningError, match=r"source not found: missing\.jsonl"):
        compare_labellings([with_source], [labels])


@pytest.mark.skipif(not (SHARED / "web").is_dir(), reason="../shared is absent")
def test_the_second_reading_of_held_out_pages_matches_them_line_for_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the records name their crawl file relative to the project
    second = ROOT / "bench" / "data" / "heldout-second-reading.jsonl"
    result = compare_labellings([ROOT / "annotations" / "heldout"], [second])
    assert result.pages == 64 and not result.mismatched and result.only_second == 0
