"""Choose hyper-parameters by k-fold cross-validation, train the final model, write its model card.

The threshold is on P(noise), chosen from out-of-fold scores: the lowest threshold (not below 0.5)
that keeps recall on `good` at or above the target, so few good documents are misjudged as noise.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from cleaning.quality import model as qm
from cleaning.quality.annotations import Annotation, CheckReport

# Measured on the 1,109 real hand labels (bench/quality_eval.py): characters with word n-grams
# 2-3 are best; bigram tokens and sentencepiece pieces were no better, wordNgrams=1 diverges.
DEFAULT_GRID: tuple[qm.TrainParams, ...] = (
    qm.TrainParams(representation="chars", word_ngrams=2),
    qm.TrainParams(representation="chars", word_ngrams=3),
    qm.TrainParams(representation="char_bigrams", word_ngrams=2),
)


@dataclass
class CVResult:
    params: qm.TrainParams
    scores: np.ndarray  # out-of-fold P(noise) per annotation
    accuracy: float


def cross_validate(
    texts: list[str], labels: list[str], params: qm.TrainParams, folds: int, chunk_chars: int, fraction: float = 1.0
) -> CVResult:
    """Out-of-fold P(noise) for every annotation; `fraction` < 1 trains on part of each training fold."""
    y = np.array([label == "noise" for label in labels])
    scores = np.zeros(len(texts))
    rng = np.random.default_rng(params.seed)
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=params.seed).split(texts, y):
        if fraction < 1:
            train_idx = rng.permutation(train_idx)[: max(10, int(len(train_idx) * fraction))]
        model = qm.train([texts[i] for i in train_idx], [labels[i] for i in train_idx], params)
        scores[test_idx] = qm.score_documents(model, [texts[i] for i in test_idx], params.representation, chunk_chars)
    return CVResult(params, scores, float(((scores > 0.5) == y).mean()))


def choose_threshold(scores: np.ndarray, is_noise: np.ndarray, good_recall: float) -> float:
    """Lowest P(noise) threshold (>= 0.5) that rejects at most 1 - good_recall of the good documents."""
    good = np.sort(scores[~is_noise])
    if good.size == 0:
        return 0.5
    return float(max(0.5, np.quantile(good, good_recall, method="higher")))


def metrics(scores: np.ndarray, is_noise: np.ndarray, threshold: float) -> dict[str, Any]:
    pred = scores > threshold
    out: dict[str, Any] = {"threshold": round(threshold, 4), "accuracy": round(float((pred == is_noise).mean()), 4)}
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
    out["good_wrongly_rejected"] = round(out["confusion"]["good_rejected"] / max(1, int((~is_noise).sum())), 4)
    return out


def train_and_describe(
    annotations: list[Annotation],
    report: CheckReport,
    out: Path,
    grid: tuple[qm.TrainParams, ...] = DEFAULT_GRID,
    folds: int = 5,
    chunk_chars: int = 300,
    good_recall: float = 0.95,
    seed: int = 1,
    learning_curve: bool = True,
) -> dict[str, Any]:
    """Grid-search by CV, train on everything with the best setting, save model + model card."""
    started = time.perf_counter()
    texts = [a.text for a in annotations]
    labels = [a.label for a in annotations]
    is_noise = np.array([label == "noise" for label in labels])
    results = [cross_validate(texts, labels, replace(p, seed=seed), folds, chunk_chars) for p in grid]
    best = max(results, key=lambda r: (r.accuracy, -r.params.word_ngrams))
    threshold = choose_threshold(best.scores, is_noise, good_recall)
    curve = []
    if learning_curve:
        for fraction in (0.25, 0.5, 0.75):
            r = cross_validate(texts, labels, best.params, folds, chunk_chars, fraction)
            curve.append({"fraction": fraction, "annotations": int(len(texts) * (folds - 1) / folds * fraction),
                          "accuracy": round(r.accuracy, 4)})  # fmt: skip
        curve.append({"fraction": 1.0, "annotations": int(len(texts) * (folds - 1) / folds),
                      "accuracy": round(best.accuracy, 4)})  # fmt: skip
    final = qm.train(texts, labels, best.params)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    final.save_model(str(tmp))
    tmp.replace(out)
    card = {
        "model": out.name,
        "params": best.params.describe(),
        "chunk_chars": chunk_chars,
        "threshold": round(threshold, 4),
        "threshold_rule": f"lowest P(noise) threshold >= 0.5 keeping CV recall on good >= {good_recall}",
        "data": {
            "files": [{"path": str(p), "sha256": _sha256(p)} for p in report.files],
            "annotations": len(texts),
            "per_class": {label: labels.count(label) for label in ("good", "noise")},
            "invalid_lines_skipped": len([e for e in report.errors if not e.startswith("same text")]),
        },
        "cv": {
            "folds": folds,
            "at_0.5": metrics(best.scores, is_noise, 0.5),
            "at_threshold": metrics(best.scores, is_noise, threshold),
            "grid": [{"params": r.params.describe(), "accuracy": round(r.accuracy, 4)} for r in results],
        },
        "learning_curve": curve,
        "seconds": round(time.perf_counter() - started, 2),
    }
    card_path = out.with_suffix(".card.json")
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    card_path.with_suffix(".md").write_text(render_card(card), encoding="utf-8")
    return card


def render_card(card: dict[str, Any]) -> str:
    cv, at = card["cv"], card["cv"]["at_threshold"]
    lines = [
        f"# Quality model card: {card['model']}",
        "",
        f"- annotations: {card['data']['annotations']} ({card['data']['per_class']}), "
        f"files: {', '.join(f['path'] for f in card['data']['files'])}",
        f"- chosen setting: {card['params']}, documents scored in chunks of {card['chunk_chars']} chars",
        f"- threshold on P(noise): {card['threshold']} ({card['threshold_rule']})",
        f"- {cv['folds']}-fold CV accuracy at 0.5: {cv['at_0.5']['accuracy']}; at the threshold: {at['accuracy']}",
        "",
        "| class | precision | recall | F1 |",
        "|---|---|---|---|",
        *(f"| {c} | {at[c]['precision']} | {at[c]['recall']} | {at[c]['f1']} |" for c in ("good", "noise")),
        "",
        f"Confusion at the threshold: {at['confusion']}; good wrongly rejected: {at['good_wrongly_rejected']}",
        "",
        "| setting | CV accuracy |",
        "|---|---|",
        *(
            f"| {g['params']['representation']}, wordNgrams={g['params']['word_ngrams']} | {g['accuracy']} |"
            for g in cv["grid"]
        ),
        "",
        "Learning curve (annotations in training folds → CV accuracy): "
        + ", ".join(f"{p['annotations']} → {p['accuracy']}" for p in card["learning_curve"]),
        "",
    ]
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
