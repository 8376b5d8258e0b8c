"""Measure the quality classifier: the figures of the quality issue's closing note.

Usage: python bench/quality_eval.py --run OUT [--folds 5] [--skip-curve]
OUT is a finished run over ../shared/data/web/cc-main-2023-50_ja_pages.jsonl.gz (`make train-rules`
makes one); the labelled pages are taken as its rules stage leaves them.

1. Chunk level, the 1,109 real hand labels (../shared/data/annotations/mc4ja_hatakeyama_train.jsonl):
   5-fold CV of fastText settings, fastText + combiner, and a character TF-IDF logistic regression
   as a non-fastText reference.
2. Page level, KEEP vs DROP: 5-fold CV grouped by site over every labelled page (the gold pages,
   annotations/pages, annotations/heldout) with the starter annotations in every training fold;
   and the shipped model (annotations/model/) on the pages it never saw (gold and held-out).
3. Calibration: reliability bins and Brier score of those out-of-fold scores.
4. Does active learning pay: accuracy against number of labels, uncertainty sampling vs random.
5. Throughput of the stage (MB/s of text on one core) and its share of clean documents rejected.
Writes bench/results/quality-eval-DATE.{json,md}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from datetime import date
from pathlib import Path

import numpy as np

from cleaning.document import Doc
from cleaning.evaluation.quality_pages import pages_as_rules_leave_them
from cleaning.quality import model as qm
from cleaning.quality import train as qt
from cleaning.quality.annotations import training_set
from cleaning.quality.pages import MIN_CHARS, TrainDoc

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
LABELS = SHARED / "annotations" / "mc4ja_hatakeyama_train.jsonl"
GOLD = SHARED / "gold" / "labels"
PAGES = ROOT / "annotations" / "pages" / "cc-main-2023-50.jsonl"
HELDOUT = ROOT / "annotations" / "heldout"
STARTER = [ROOT / "annotations" / "starter.jsonl", ROOT / "annotations" / "starter_web.jsonl"]
SHIPPED = ROOT / "annotations" / "model" / "quality.bin"
CLEAN = [SHARED / "clean" / "ku_wikipedia_leads.jsonl.gz", SHARED / "clean" / "livedoor_news.jsonl.gz"]


def keep_precision_at_recall(scores: np.ndarray, is_noise: np.ndarray, recall: float = 0.9) -> float | None:
    """Share of KEEP among kept pages when the threshold keeps `recall` of the KEEP pages."""
    if is_noise.all() or not is_noise.any():
        return None
    t = np.quantile(scores[~is_noise], recall, method="higher")
    kept = scores <= t
    return round(float((~is_noise[kept]).mean()), 4)


def page_figures(scores: np.ndarray, is_noise: np.ndarray, threshold: float) -> dict:
    m = qt.metrics(scores, is_noise, threshold)
    return {
        "pages": len(scores),
        "drop": int(is_noise.sum()),
        "auc": qt.auc(scores, is_noise),
        "keep_precision_at_keep_recall_0.9": keep_precision_at_recall(scores, is_noise),
        "threshold": round(threshold, 4),
        "keep_precision": m["good"]["precision"],
        "keep_recall": m["good"]["recall"],
        "drop_recall": m["noise"]["recall"],
        "calibration": qt.calibration(scores, is_noise),
    }


def chunk_level(folds: int) -> list[dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    data, _ = training_set([LABELS], skip_invalid=False)
    docs = qt.annotation_documents(data)
    y = np.array([d.label == "noise" for d in docs])
    rows = []
    settings = {
        "fastText chars, wordNgrams 2, dim 16 (default)": qt.Settings(combiner=False),
        "fastText chars, wordNgrams 2, dim 50": qt.Settings(params=qm.TrainParams(dim=50), combiner=False),
        "fastText chars, wordNgrams 3": qt.Settings(params=qm.TrainParams(word_ngrams=3), combiner=False),
        "fastText char bigrams": qt.Settings(params=qm.TrainParams(representation="char_bigrams"), combiner=False),
        "fastText + combiner (the stage's model)": qt.Settings(),
    }
    for name, s in settings.items():
        started = time.perf_counter()
        scores = qt.cross_validate(docs, s, folds)
        rows.append(_chunk_row(name, scores, y, time.perf_counter() - started))
    texts = [d.text for d in docs]
    scores = np.zeros(len(docs))
    for train_idx, test_idx in qt._folds(docs, folds, 1):
        lr = make_pipeline(
            TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2),
            LogisticRegression(C=10, max_iter=3000),
        ).fit([texts[i] for i in train_idx], y[train_idx])
        scores[test_idx] = lr.predict_proba([texts[i] for i in test_idx])[:, 1]
    rows.append(_chunk_row("reference: char 1-3-gram TF-IDF + logistic regression", scores, y, 0))
    return rows


def _chunk_row(name: str, scores: np.ndarray, y: np.ndarray, seconds: float) -> dict:
    t = qt.choose_threshold(scores, y, 0.90)
    row = {
        "setting": name,
        "accuracy_at_0.5": qt.metrics(scores, y, 0.5)["accuracy"],
        "auc": qt.auc(scores, y),
        "at_good_recall_0.90": {"threshold": round(t, 4), "accuracy": qt.metrics(scores, y, t)["accuracy"]},
        "best_accuracy_any_threshold": round(max(qt.metrics(scores, y, t)["accuracy"] for t in np.unique(scores)), 4),
        "calibration": qt.calibration(scores, y),
        "seconds": round(seconds, 1),
    }
    print(json.dumps({k: row[k] for k in ("setting", "accuracy_at_0.5", "auc")}, ensure_ascii=False), flush=True)
    return row


def page_level(run: Path, folds: int) -> dict:
    """CV over sites: each fold trains as the product does (starter annotations plus the labelled
    pages with >= 200 characters left) and scores every held-out page, short ones included."""
    pages, counts = pages_as_rules_leave_them(run, [GOLD, PAGES, HELDOUT], min_chars=0)
    starter, _ = training_set(STARTER, skip_invalid=False)
    chunks = qt.annotation_documents(starter)
    long = np.array([len(d.text.strip()) >= MIN_CHARS for d in pages])
    py = np.array([d.label == "noise" for d in pages])
    ps = np.zeros(len(pages))
    settings = qt.Settings()
    for i, (train_idx, test_idx) in enumerate(qt._folds(pages, folds, 1), 1):
        train = chunks + [pages[j] for j in train_idx if long[j]]
        ft, combiner = qt.fit(train, settings)
        ps[test_idx] = qt.predict(ft, combiner, [pages[j].text for j in test_idx], settings)
        print(f"page CV: fold {i}/{folds} done", flush=True)
    threshold = qt.choose_threshold(ps[long], py[long], 0.95)
    out = {"counts": dict(counts), "threshold_rule": "CV threshold keeping recall 0.95 of KEEP pages with >= 200 chars"}
    source = np.array([_source(d) for d in pages])
    for name, m in (
        ("cv_all_pages", np.ones(len(pages), dtype=bool)),
        ("cv_pages_200_chars_left", long),
        ("cv_pages_under_200_chars_left", ~long),
        ("cv_gold_pages", source == "gold"),
        ("cv_gold_pages_200_chars_left", (source == "gold") & long),
        ("cv_heldout_pages", source == "heldout"),
    ):
        out[name] = page_figures(ps[m], py[m], threshold)
    if SHIPPED.is_file():
        model = qm.QualityModel.load(SHIPPED)
        unseen = np.array([s in ("gold", "heldout") for s in source])
        s = model.score([d.text for d in pages])
        out["shipped_model_unseen_pages"] = page_figures(s[unseen], py[unseen], model.threshold)
        out["shipped_model_unseen_pages_200_chars_left"] = page_figures(
            s[unseen & long], py[unseen & long], model.threshold
        )
    return out


def _source(doc: TrainDoc) -> str:
    return "gold" if "gold" in doc.where else ("heldout" if "heldout" in doc.where else "annotations")


def learning_curve(folds: int, step: int = 100, start: int = 100) -> dict:
    """On the real labels: per outer fold, grow a labelled pool from `start` random labels by `step`
    at a time, either at random or the most uncertain (P(noise) closest to the model's threshold)."""
    data, _ = training_set([LABELS], skip_invalid=False)
    docs = qt.annotation_documents(data)
    y = np.array([d.label == "noise" for d in docs])
    s = qt.Settings(combiner=False)
    curves: dict[str, dict[int, list[float]]] = {"random": {}, "uncertain": {}}
    for f, (pool_idx, test_idx) in enumerate(qt._folds(docs, folds, 1)):
        rng = np.random.default_rng(f)
        first = list(rng.choice(pool_idx, start, replace=False))
        for strategy in curves:
            labelled = list(first)
            while True:
                ft, _ = qt.fit([docs[i] for i in labelled], s)
                acc = qt.metrics(qt.predict(ft, None, [docs[i].text for i in test_idx], s), y[test_idx], 0.5)[
                    "accuracy"
                ]
                curves[strategy].setdefault(len(labelled), []).append(acc)
                rest = np.setdiff1d(pool_idx, labelled)
                if len(rest) < step:
                    break
                if strategy == "random":
                    labelled += list(rng.choice(rest, step, replace=False))
                else:
                    p = qt.predict(ft, None, [docs[i].text for i in rest], s)
                    labelled += list(rest[np.argsort(np.abs(p - 0.5))[:step]])
        print(f"learning curve: fold {f + 1}/{folds} done", flush=True)
    return {k: {n: round(float(np.mean(v)), 4) for n, v in sorted(c.items())} for k, c in curves.items()}


def throughput(run: Path) -> dict:
    """The stage's scoring on the crawl pages as the rules stage leaves them, one core, shipped model."""
    from cleaning.evaluation.runread import open_run
    from cleaning.quality.sample import read_corpus

    view = open_run(run)
    docs = read_corpus([view.stage_dir("rules") / "shards"])
    texts = [d.text for d in docs]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    model = qm.QualityModel.load(SHIPPED)
    out = {"documents": len(texts), "mb": round(mb, 2)}
    for name, fn in (
        ("fasttext_only_mb_per_s", lambda batch: qm.score_documents(model.fasttext, batch, "chars", 300)),
        ("stage_model_mb_per_s", model.score),
    ):
        fn(texts[:50])
        started = time.perf_counter()
        for i in range(0, len(texts), 1024):
            fn(texts[i : i + 1024])
        out[name] = round(mb / (time.perf_counter() - started), 2)
    return out


def clean_rejection() -> dict:
    """Share of clean documents (Wikipedia leads, livedoor news) the shipped model rejects."""
    model = qm.QualityModel.load(SHIPPED)
    out = {}
    for path in CLEAN:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            docs = [Doc(str(i), json.loads(line)["text"]) for i, line in zip(range(2000), f, strict=False)]
        s = model.score([d.text for d in docs])
        out[path.name] = {"documents": len(docs), "rejected_share": round(float((s > model.threshold).mean()), 4)}
    return out


def render(report: dict) -> str:
    lines = [
        f"# Quality classifier evaluation, {report['date']}",
        "",
        "## Chunk level: 1,109 real labels, 5-fold CV",
        "",
    ]
    lines += ["| setting | accuracy at 0.5 | AUC | accuracy at good recall 0.90 | best accuracy | calibration gap |"]
    lines += ["|---|---|---|---|---|---|"]
    for r in report["chunk_level"]:
        lines.append(
            f"| {r['setting']} | {r['accuracy_at_0.5']} | {r['auc']} | {r['at_good_recall_0.90']['accuracy']} | "
            f"{r['best_accuracy_any_threshold']} | {r['calibration']['max_gap']} |"
        )
    lines += ["", "## Page level: KEEP vs DROP", ""]
    lines += ["| pages | n | DROP | AUC | KEEP precision at KEEP recall 0.9 | threshold | KEEP precision | KEEP recall "
              "| Brier | calibration gap |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, f in report["page_level"].items():
        if not isinstance(f, dict) or "pages" not in f:
            continue
        lines.append(
            f"| {name} | {f['pages']} | {f['drop']} | {f['auc']} | {f['keep_precision_at_keep_recall_0.9']} | "
            f"{f['threshold']} | {f['keep_precision']} | {f['keep_recall']} | {f['calibration']['brier']} | "
            f"{f['calibration']['max_gap']} |"
        )
    if report.get("learning_curve"):
        lines += [
            "",
            "## Learning curve (real labels, fastText, accuracy at 0.5)",
            "",
            "| labels | random | uncertain |",
        ]
        lines += ["|---|---|---|"]
        for n, acc in report["learning_curve"]["random"].items():
            lines.append(f"| {n} | {acc} | {report['learning_curve']['uncertain'].get(n)} |")
    if report.get("throughput"):
        lines += ["", f"Throughput (one core): {json.dumps(report['throughput'])}"]
    if report.get("clean_rejection"):
        lines += ["", f"Clean documents rejected by the shipped model: {json.dumps(report['clean_rejection'])}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished run over the crawl file")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip-curve", action="store_true", help="leave out the learning curve (slow)")
    args = parser.parse_args()
    if not LABELS.exists():
        raise SystemExit(f"quality_eval: {LABELS} not found (../shared is needed)")
    report: dict = {"date": date.today().isoformat(), "run": str(args.run)}
    report["chunk_level"] = chunk_level(args.folds)
    report["page_level"] = page_level(args.run, args.folds)
    print(json.dumps({k: v.get("auc") for k, v in report["page_level"].items() if isinstance(v, dict)}), flush=True)
    if not args.skip_curve:
        report["learning_curve"] = learning_curve(args.folds)
    if SHIPPED.is_file():
        report["throughput"] = throughput(args.run)
        report["clean_rejection"] = clean_rejection()
    out = ROOT / "bench" / "results" / f"quality-eval-{report['date']}"
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(render(report))
    print(f"written: {out}.json and .md")


if __name__ == "__main__":
    main()
