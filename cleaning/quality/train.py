"""Train the quality model, measure it by cross-validation, and write its model card.

Training data are annotation texts (chunks) and labelled pages as the classifier sees them
(`cleaning.quality.pages`). fastText learns from their chunks; the combiner learns from fastText's
out-of-fold scores plus the document features, so it weighs fastText as it behaves on unseen text
and its output is a calibrated P(noise). Everything is measured by cross-validation over groups
(a page's site stays in one fold), with the whole training, fastText included, redone per fold.

The threshold on P(noise) is chosen from out-of-fold scores: the lowest threshold (not below 0.5)
that keeps recall on `good` at or above the target, so few good documents are misjudged as noise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.quality import model as qm
from cleaning.quality.annotations import Annotation, CheckReport
from cleaning.quality.features import NAMES, feature_matrix
from cleaning.quality.pages import TrainDoc
from cleaning.shards import file_sha256

CALIBRATION_BINS = 10
MIN_BIN = 30  # reliability is judged only in bins holding at least this many documents


@dataclass(frozen=True)
class Settings:
    params: qm.TrainParams = field(default_factory=qm.TrainParams)
    chunk_chars: int = 300
    inner_folds: int = 3  # folds giving fastText's out-of-fold scores the combiner learns from
    c: float = 1.0  # inverse L2 strength of the combiner
    combiner: bool = True  # False: fastText alone (for comparison)
    min_pages: int = 30  # labelled pages per class from which the combiner learns from pages alone


def annotation_documents(annotations: list[Annotation]) -> list[TrainDoc]:
    return [TrainDoc(a.text, a.label, f"chunk:{i}", "chunk", a.where) for i, a in enumerate(annotations)]


def _fasttext(docs: list[TrainDoc], s: Settings) -> Any:
    texts, labels = [], []
    for d in docs:
        for piece in qm.chunks(d.text, s.chunk_chars):
            texts.append(piece)
            labels.append(d.label)
    return qm.train(texts, labels, s.params)


def _folds(docs: list[TrainDoc], k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold  # here: scikit-learn takes 1.7 s to import

    y = np.array([d.label == "noise" for d in docs])
    groups = [d.group for d in docs]
    k = max(2, min(k, int(y.sum()), int((~y).sum())))
    return list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(docs)), y, groups))


def fit(docs: list[TrainDoc], s: Settings, seed: int = 1) -> tuple[Any, qm.Combiner | None]:
    """fastText on all documents; the combiner on fastText's out-of-fold chunk scores."""
    final = _fasttext(docs, s)
    if not s.combiner:
        return final, None
    texts = [d.text for d in docs]
    mean, top = np.zeros(len(docs)), np.zeros(len(docs))
    for train_idx, test_idx in _folds(docs, s.inner_folds, seed):
        ft = _fasttext([docs[i] for i in train_idx], s)
        m, t = qm.chunk_scores(ft, [texts[i] for i in test_idx], s.params.representation, s.chunk_chars)
        mean[test_idx], top[test_idx] = m, t
    y = np.array([d.label == "noise" for d in docs])
    on = combiner_rows(docs, s)
    return final, qm.fit_combiner(feature_matrix(texts, mean, top)[on], y[on], NAMES, s.c)


def combiner_rows(docs: list[TrainDoc], s: Settings) -> np.ndarray:
    """The documents the combiner learns from: the labelled pages when there are enough of both kinds,
    since the stage scores whole pages; otherwise every document. fastText learns from all of them."""
    pages = np.array([d.kind == "page" for d in docs])
    noise = np.array([d.label == "noise" for d in docs])
    if min((pages & noise).sum(), (pages & ~noise).sum()) >= s.min_pages:
        return pages
    return np.ones(len(docs), dtype=bool)


def predict(ft: Any, combiner: qm.Combiner | None, texts: list[str], s: Settings) -> np.ndarray:
    return qm.score(ft, combiner, texts, s.params.representation, s.chunk_chars)


def cross_validate(
    docs: list[TrainDoc], s: Settings, folds: int, seed: int = 1, log: Callable[[str], None] | None = None
) -> np.ndarray:
    """Out-of-fold P(noise) for every document, the whole training redone in each fold."""
    scores = np.zeros(len(docs))
    splits = _folds(docs, folds, seed)
    for i, (train_idx, test_idx) in enumerate(splits, 1):
        ft, combiner = fit([docs[j] for j in train_idx], s, seed)
        scores[test_idx] = predict(ft, combiner, [docs[j].text for j in test_idx], s)
        if log:
            log(f"cross-validation fold {i}/{len(splits)} done")
    return scores


def choose_threshold(scores: np.ndarray, is_noise: np.ndarray, good_recall: float) -> float:
    """Lowest P(noise) threshold (>= 0.5) that rejects at most 1 - good_recall of the good documents."""
    good = np.sort(scores[~is_noise])
    if good.size == 0:
        return 0.5
    return float(max(0.5, np.quantile(good, good_recall, method="higher")))


def metrics(scores: np.ndarray, is_noise: np.ndarray, threshold: float) -> dict[str, Any]:
    pred = scores > threshold
    out: dict[str, Any] = {
        "documents": len(scores),
        "threshold": round(threshold, 4),
        "accuracy": round(float((pred == is_noise).mean()), 4) if len(scores) else None,
    }
    for name, truth, guess in (("good", ~is_noise, ~pred), ("noise", is_noise, pred)):
        tp = int((truth & guess).sum())
        precision = tp / max(1, int(guess.sum()))
        recall = tp / max(1, int(truth.sum()))
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}
    out["confusion"] = {
        "good_kept": int((~is_noise & ~pred).sum()),
        "good_rejected": int((~is_noise & pred).sum()),
        "noise_kept": int((is_noise & ~pred).sum()),
        "noise_rejected": int((is_noise & pred).sum()),
    }
    return out


def calibration(scores: np.ndarray, is_noise: np.ndarray) -> dict[str, Any]:
    """Brier score and the reliability curve: in each tenth of P(noise), the share that is noise."""
    bins = []
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    for b in range(CALIBRATION_BINS):
        m = which == b
        n = int(m.sum())
        if n:
            mean_p, share = round(float(scores[m].mean()), 4), round(float(is_noise[m].mean()), 4)
            edge = round(float(edges[b]), 2), round(float(edges[b + 1]), 2)
            bins.append({"from": edge[0], "to": edge[1], "documents": n, "mean_p": mean_p, "noise_share": share})
    judged = [abs(b["mean_p"] - b["noise_share"]) for b in bins if b["documents"] >= MIN_BIN]
    return {
        "brier": round(float(((scores - is_noise) ** 2).mean()), 4) if len(scores) else None,
        "max_gap": round(max(judged), 4) if judged else None,
        "max_gap_rule": f"largest |mean P(noise) - share of noise| over bins with >= {MIN_BIN} documents",
        "bins": bins,
    }


def auc(scores: np.ndarray, is_noise: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(is_noise, scores)), 4) if 0 < is_noise.sum() < len(is_noise) else None


def evaluate(docs: list[TrainDoc], scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Figures of out-of-fold scores: all documents, then annotation chunks and pages separately."""
    is_noise = np.array([d.label == "noise" for d in docs])
    out: dict[str, Any] = {"at_0.5": metrics(scores, is_noise, 0.5)}
    out["at_threshold"] = metrics(scores, is_noise, threshold)
    out["auc"] = auc(scores, is_noise)
    for kind in ("chunk", "page"):
        m = np.array([d.kind == kind for d in docs])
        if m.any():
            out[f"{kind}s"] = {**metrics(scores[m], is_noise[m], threshold), "auc": auc(scores[m], is_noise[m])}
    return out


def train_and_describe(
    annotations: list[Annotation],
    report: CheckReport,
    out: Path,
    pages: list[TrainDoc] | None = None,
    page_counts: dict[str, int] | None = None,
    folds: int = 5,
    good_recall: float = 0.95,
    settings: Settings | None = None,
    seed: int = 1,
    log: Callable[[str], None] | None = None,
    quantize: bool = False,
) -> dict[str, Any]:
    """Cross-validate, train on everything, save the fastText model and the model card (the card holds
    the combiner). Same data, same bytes: the card has no timings."""
    settings = settings or Settings()
    docs = annotation_documents(annotations) + list(pages or [])
    is_noise = np.array([d.label == "noise" for d in docs])
    scores = cross_validate(docs, settings, folds, seed, log)
    on = combiner_rows(docs, settings)  # the threshold serves the documents the stage will score
    threshold = choose_threshold(scores[on], is_noise[on], good_recall)
    ft, combiner = fit(docs, settings, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    ft.save_model(str(tmp))
    if quantize:
        qm.quantize(tmp)
    tmp.replace(out)
    card = {
        "model": out.name,
        "params": settings.params.describe(),
        "chunk_chars": settings.chunk_chars,
        "quantized": quantize,  # the CV figures are of unquantised models
        "combiner": combiner.to_json() if combiner else None,
        "threshold": round(threshold, 4),
        "threshold_rule": f"lowest P(noise) threshold >= 0.5 keeping CV recall on good >= {good_recall}"
        + (" (on labelled pages)" if not on.all() else ""),
        "data": {
            "files": [{"path": str(p), "sha256": file_sha256(p)} for p in _sources(report, annotations, pages or [])],
            "annotations": len(annotations),
            "pages": dict(page_counts or {}),
            "per_class": {label: int((is_noise == (label == "noise")).sum()) for label in ("good", "noise")},
            "invalid_lines_skipped": len([e for e in report.errors if not e.startswith(("same", "no annotation"))]),
        },
        "cv": {"folds": folds, "grouped_by": "document; a page's site", **evaluate(docs, scores, threshold)},
        "calibration": calibration(scores[on], is_noise[on]),
    }
    card_path = out.with_suffix(".card.json")
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    card_path.with_suffix(".md").write_text(render_card(card), encoding="utf-8")
    return card


def render_card(card: dict[str, Any]) -> str:
    cv, at, cal = card["cv"], card["cv"]["at_threshold"], card["calibration"]
    pages = card["data"].get("pages") or {}
    lines = [
        f"# Quality model card: {card['model']}",
        "",
        f"- trained on {card['data']['annotations']} annotations and {pages.get('used', 0)} labelled pages "
        f"({card['data']['per_class']}); {pages.get('not_in_run', 0)} labelled pages were not in the run",
        f"- files: {', '.join(f['path'] for f in card['data']['files'])}",
        f"- fastText: {card['params']['representation']}, wordNgrams={card['params']['word_ngrams']}, "
        f"chunks of {card['chunk_chars']} characters; combiner: logistic regression over "
        f"{len((card.get('combiner') or {}).get('features', []))} document features",
        f"- threshold on P(noise): {card['threshold']} ({card['threshold_rule']})",
        f"- {cv['folds']}-fold CV ({cv['grouped_by']}): accuracy {cv['at_0.5']['accuracy']} at 0.5, "
        f"{at['accuracy']} at the threshold; AUC {cv['auc']}",
        "",
        "| at the threshold | documents | accuracy | good precision | good recall | noise precision | noise recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("at_threshold", "chunks", "pages"):
        m = cv.get(name)
        if m:
            label = {"at_threshold": "all", "chunks": "annotations", "pages": "pages (KEEP = good)"}[name]
            lines.append(f"| {label} | {m['documents']} | {m['accuracy']} | {m['good']['precision']} | "
                         f"{m['good']['recall']} | {m['noise']['precision']} | {m['noise']['recall']} |")  # fmt: skip
    lines += [
        "",
        f"Calibration (out-of-fold): Brier {cal['brier']}; {cal['max_gap_rule']}: {cal['max_gap']}",
        "",
        "| P(noise) | documents | mean P(noise) | share that is noise |",
        "|---|---|---|---|",
        *(f"| {b['from']}–{b['to']} | {b['documents']} | {b['mean_p']} | {b['noise_share']} |" for b in cal["bins"]),
        "",
    ]
    if card.get("combiner"):
        lines += ["Combiner weights (per standard deviation of each feature; positive = more likely noise):", ""]
        lines += [f"- {f['name']}: {f['coef']:+.3f}" for f in card["combiner"]["features"]]
        lines.append("")
    return "\n".join(lines)


def _sources(report: CheckReport, annotations: list[Annotation], pages: list[TrainDoc]) -> list[Path]:
    """The files that gave training data: chunk annotations, and the page records that were used."""
    used = {a.where.rsplit(":", 1)[0] for a in annotations} | {d.where.rsplit(":", 1)[0] for d in pages}
    return sorted({*(p for p in report.files if str(p) in used), *(Path(u) for u in used)})
