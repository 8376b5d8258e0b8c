"""Intervals of the eval figures: a bootstrap over labelled pages, alone and paired between two runs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from cleaning.evaluation.align import PageResult, align_page
from cleaning.evaluation.intervals import FIGURES, compare, figures, flips, intervals, page_sums
from cleaning.evaluation.runread import Fate
from cleaning.evaluation.score import score
from cleaning.pagelabels import PageLabel

LINES = {"C": "本文の{}行目は、ここにある文章です。", "B": "ホーム{}", "N": "見出し{}"}


def _normalize(s: str) -> list[str]:
    return [s] if s.strip() else []


def pages(n: int, seed: int, drop_content: float = 0.0) -> list[PageResult]:
    """n labelled pages, each kept with some of its lines (or rejected); `drop_content`: the share of
    pages that also lose their content lines (a worse run on the same pages)."""
    rng = random.Random(seed)
    worse = random.Random(1000 + seed)
    out = []
    for i in range(n):
        labels = "".join(rng.choice("CCCBBN") for _ in range(rng.randint(3, 12)))
        lines = [LINES[c].format(f"{i}-{j}") for j, c in enumerate(labels)]
        verdict = rng.choice(["KEEP", "KEEP", "DROP", "BORDER"])
        page = PageLabel(f"p{i}", labels, verdict, f"x:{i}", "\n".join(lines))
        lose = worse.random() < drop_content
        kept = [s for s, c in zip(lines, labels, strict=True) if rng.random() < (0.9 if c != "B" else 0.3)]
        if lose:
            kept = [s for s, c in zip(lines, labels, strict=True) if c != "C" and s in kept]
        fate = Fate(kept_text="\n".join(kept)) if kept and rng.random() < 0.8 else Fate(stage="rules", reason="x")
        out.append(align_page(page, fate, _normalize, None))
    return out


def test_summed_page_counts_give_the_scored_figures() -> None:
    results = pages(60, seed=1)
    direct = score(results).as_dict()
    summed = figures(np.array([row for _, row in page_sums(results)]).sum(axis=0))
    for k, (name, _) in enumerate(FIGURES):
        assert summed[k] == pytest.approx(direct[name], abs=1e-4), name


def test_intervals_hold_the_figure_and_narrow_with_more_pages() -> None:
    few = pages(40, seed=2)
    many = few * 9  # the same pages nine times: the same figures, sampled from nine times as many pages
    scores = score(few).as_dict()
    narrow, wide = intervals(many), intervals(few)
    for name, _ in FIGURES:
        lo, hi = wide[name]
        assert lo <= scores[name] <= hi, name
        assert narrow[name][1] - narrow[name][0] < (hi - lo) * 0.6, name
    assert 0 <= wide["purity"][0] < wide["purity"][1] <= 1


def test_a_run_against_itself_differs_by_nothing() -> None:
    results = pages(50, seed=3)
    diffs, common = compare(results, results)
    assert common == 50
    for d in diffs:
        assert d.this == d.other and d.low == d.high == 0 and d.verdict == "no clear difference"


def test_losing_content_on_many_pages_is_clearly_worse_and_the_other_way_better() -> None:
    before, after = pages(80, seed=4), pages(80, seed=4, drop_content=0.5)
    diffs, common = compare(after, before)
    found = {d.figure: d for d in diffs}
    assert common == 80
    recall = found["content_recall"]
    assert recall.this < recall.other and recall.high < 0 and recall.verdict == "worse"
    assert {d.figure: d.verdict for d in compare(before, after)[0]}["content_recall"] == "better"
    fewer_b = found["boilerplate_lines_mean"]  # lower is better: the sign is read the other way round
    assert fewer_b.higher_is_better is False


def test_only_pages_scored_by_both_runs_are_compared() -> None:
    a, b = pages(30, seed=5), pages(30, seed=5)
    b[0].status = "duplicate"  # judged as its other copy in one run: not comparable
    assert compare(a, b)[1] == 29
    assert compare(a, [])[1] == 0 and intervals([]) == {}


def test_pages_whose_fate_changed_are_listed_with_both_outcomes() -> None:
    before, after = pages(40, seed=6), pages(40, seed=6)
    kept = next(r for r in after if r.is_kept)
    kept.status, kept.reason = "rejected", "rules:doc.page_model"
    kept.kept = [False] * len(kept.kept)
    assert flips(before, before) == []
    assert flips(after, before) == [
        {"id": kept.page.id, "verdict": kept.page.verdict, "this": "rules:doc.page_model", "other": "kept"}
    ]


def test_the_html_shows_intervals_the_comparison_and_the_pages_that_changed(tmp_path: Path) -> None:
    from cleaning.evaluation.views import write_html

    before, after = pages(20, seed=7), pages(20, seed=7, drop_content=0.5)
    kept = next(r for r in after if r.is_kept)
    kept.status, kept.reason, kept.kept = "rejected", "quality.noise", [False] * len(kept.kept)
    diffs, common = compare(after, before)
    summary = {
        "run": "new",
        "intervals_95": {k: list(v) for k, v in intervals(after).items()},
        "against": {
            "run": "old",
            "pages": common,
            "figures": {d.figure: d.as_dict() for d in diffs},
            "changed_fate": flips(after, before),
        },
    }
    write_html(tmp_path / "e.html", score(after), after, summary)
    html = (tmp_path / "e.html").read_text(encoding="utf-8")
    assert "95% interval" in html and "Against old (20 pages both scored)" in html
    assert f"<a href='#{kept.page.id}'>{kept.page.id}</a> {kept.page.verdict}: quality.noise (other run: kept)" in html
