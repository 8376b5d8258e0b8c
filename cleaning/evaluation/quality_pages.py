"""Labelled pages as the quality classifier would see them, from a finished run.

The quality stage itself learns only from the labelled pages that reach it. To train (or measure) a
model on every labelled page, `cleaning quality train --run OUT` rebuilds each page as the run's
rules stage leaves it: its normalised text with the lines the rules removed taken out, whatever the
document rules decided.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cleaning.errors import CleaningError
from cleaning.evaluation.runread import open_run, rebuild_stages, rows_with_ids
from cleaning.quality.pages import MIN_CHARS, TrainDoc, keep_long_enough, labelled_pages, page_document


def pages_as_rules_leave_them(
    output: Path, label_paths: list[Path], min_chars: int = MIN_CHARS
) -> tuple[list[TrainDoc], Counter[str]]:
    view = open_run(output)
    pages = labelled_pages(label_paths)
    rules, normalize = view.stage_dir("rules"), view.stage_dir("normalize")
    if rules is None:
        raise CleaningError(f"{output}: this run has no rules stage")
    source = (normalize or view.output / "00-ingest") / "shards"
    rows = {r["id"]: r for r in rows_with_ids(source, {p.id for p in pages}, ["id", "text", "url"])}
    engine = rebuild_stages(view, ("rules",))["rules"].stage.engine
    found = [p for p in pages if p.id in rows]
    analyses = engine.analyse_batch([(rows[p.id]["text"], rows[p.id]["url"]) for p in found])
    docs = [page_document(p, a.text, rows[p.id]["url"]) for p, a in zip(found, analyses, strict=True)]
    return keep_long_enough(docs, len(pages), min_chars)
