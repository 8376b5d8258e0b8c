"""Evaluate the quality classifier (numbers for the quality issue).

Usage: python bench/quality_eval.py [--folds 5]
1. Model selection on the real hand labels in ../shared/data/annotations/mc4ja_hatakeyama_train.jsonl:
   k-fold CV for every setting of the default grid (accuracy, precision/recall of both classes,
   P(good wrongly rejected) at 0.5 and at the CV-chosen threshold).
2. The stage applied after normalize + rules to the 3,500 crawl pages and to the clean sets, with a
   model trained on those labels and with the starter-set model of annotations/: the share of
   documents rejected, and the stage's throughput. Writes bench/results/quality-eval-DATE.json.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
from rich.console import Console

from cleaning.pipeline import load_pipeline
from cleaning.quality.annotations import training_set
from cleaning.quality.train import DEFAULT_GRID, choose_threshold, cross_validate, metrics, train_and_describe
from cleaning.runner import Runner, RunOptions

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
LABELS = SHARED / "annotations" / "mc4ja_hatakeyama_train.jsonl"
CORPORA = [
    SHARED / "web" / "cc-main-2023-50_ja_pages.jsonl.gz",
    SHARED / "clean" / "ku_wikipedia_leads.jsonl.gz",
    SHARED / "clean" / "livedoor_news.jsonl.gz",
]


def model_selection(folds: int) -> tuple[list[dict], object]:
    data, _ = training_set([LABELS], skip_invalid=False)
    texts, labels = [a.text for a in data], [a.label for a in data]
    is_noise = np.array([label == "noise" for label in labels])
    rows, best = [], None
    for params in DEFAULT_GRID:
        r = cross_validate(texts, labels, replace(params), folds, 300)
        row = {"params": params.describe(), "at_0.5": metrics(r.scores, is_noise, 0.5)}
        for target in (0.9, 0.95):
            t = choose_threshold(r.scores, is_noise, target)
            row[f"at_good_recall_{target}"] = metrics(r.scores, is_noise, t)
        rows.append(row)
        print(json.dumps({"params": row["params"], "accuracy": row["at_0.5"]["accuracy"]}))
        best = r if best is None or r.accuracy > best.accuracy else best
    return rows, best


def apply_stage(model: Path, out: Path, threshold: str) -> dict:
    """normalize + rules + quality with this model; threshold "null" = the model card's."""
    results = {}
    for corpus in CORPORA:
        pipeline = load_pipeline(
            ROOT / "pipelines" / "ja.yaml", [f"quality.model={model}", f"quality.threshold={threshold}"]
        )
        pipeline.stages = pipeline.stages[: [s.name for s in pipeline.stages].index("quality") + 1]
        opts = RunOptions([str(corpus)], out / corpus.name, use_ray=False, progress=False)
        summary = Runner(pipeline, opts, Console(file=io.StringIO())).run()
        q = next(s for s in summary["stages"] if s["stage"] == "quality")
        results[corpus.name] = {
            "docs_in": q["docs_in"],
            "rejected": q["rejected_total"],
            "rejected_share": round(q["rejected_total"] / max(1, q["docs_in"]), 4),
            "share_of_input_docs": round(q["rejected_total"] / summary["conservation"]["records_in"], 4),
            "mb_per_busy_s": round(q["bytes_in"] / 1e6 / q["seconds"], 2) if q["seconds"] else None,
        }
        print(corpus.name, json.dumps(results[corpus.name]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    if not LABELS.exists():
        raise SystemExit(f"quality_eval: {LABELS} not found (../shared is needed)")
    report: dict = {"date": date.today().isoformat(), "labels": str(LABELS)}
    report["model_selection"], _ = model_selection(args.folds)
    with tempfile.TemporaryDirectory() as tmp:
        data, rep = training_set([LABELS], skip_invalid=False)
        card = train_and_describe(data, rep, Path(tmp) / "shared-labels.bin", folds=args.folds)
        report["shared_labels_model"] = {k: card[k] for k in ("params", "threshold", "cv", "learning_curve")}
        report["stage_with_shared_labels_model"] = apply_stage(Path(tmp) / "shared-labels.bin", Path(tmp) / "a", "null")
        starter, rep2 = training_set([ROOT / "annotations"], skip_invalid=False)
        card2 = train_and_describe(starter, rep2, Path(tmp) / "starter.bin", folds=args.folds)
        report["starter_model"] = {k: card2[k] for k in ("params", "threshold", "cv", "learning_curve", "data")}
        default = str(load_pipeline(ROOT / "pipelines" / "ja.yaml").stages[-1].config.threshold)
        report["stage_with_starter_model_default_threshold"] = apply_stage(
            Path(tmp) / "starter.bin", Path(tmp) / "b", default
        )
        report["stage_with_starter_model_cv_threshold"] = apply_stage(
            Path(tmp) / "starter.bin", Path(tmp) / "c", "null"
        )
    out = ROOT / "bench" / "results" / f"quality-eval-{report['date']}.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
