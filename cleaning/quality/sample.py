"""Active learning: pick the documents annotators should label next."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.document import Doc
from cleaning.errors import CleaningError
from cleaning.quality import model as qm
from cleaning.readers import BadRecord, ReaderConfig, read_records

STRATEGIES = ("uncertain", "random", "per-cluster")


def read_corpus(paths: list[Path]) -> list[Doc]:
    """Documents of JSONL/Parquet files or of a run's shard folder (any *.parquet below it)."""
    docs: list[Doc] = []
    for path in paths:
        files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            raise CleaningError(f"corpus not found or empty: {path}")
        for f in files:
            docs.extend(d for d in read_records(f, f.name, ReaderConfig()) if not isinstance(d, BadRecord))
    return docs


def sample(docs: list[Doc], n: int, strategy: str, model_path: Path | None, seed: int = 0) -> list[dict[str, Any]]:
    """`uncertain`: P(noise) closest to the model's threshold first; `random`; `per-cluster`: round-robin
    over the `cluster` column (from the genres stage), most uncertain first within each cluster."""
    if strategy not in STRATEGIES:
        raise CleaningError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    scores = np.full(len(docs), np.nan)
    threshold = 0.5
    if strategy != "random":
        if model_path is None:
            raise CleaningError(f"--strategy {strategy} needs --model (a trained quality model)")
        card = json.loads(model_path.with_suffix(".card.json").read_text(encoding="utf-8"))
        model = qm.load(model_path)
        scores = qm.score_documents(
            model, [d.text for d in docs], card["params"]["representation"], card["chunk_chars"]
        )
        threshold = float(card["threshold"])
    order = list(range(len(docs)))
    if strategy == "random":
        random.Random(seed).shuffle(order)
    elif strategy == "uncertain":
        order.sort(key=lambda i: abs(scores[i] - threshold))
    else:
        order = _round_robin(docs, scores, threshold)
    return [_todo(docs[i], scores[i]) for i in order[:n]]


def _round_robin(docs: list[Doc], scores: np.ndarray, threshold: float) -> list[int]:
    if not any("cluster" in d.fields for d in docs):
        raise CleaningError("per-cluster sampling needs a `cluster` column: run the genres stage first")
    clusters: dict[Any, list[int]] = {}
    for i, d in enumerate(docs):
        clusters.setdefault(d.fields.get("cluster"), []).append(i)
    queues = [sorted(ix, key=lambda i: abs(scores[i] - threshold)) for _, ix in sorted(clusters.items(), key=str)]
    order: list[int] = []
    while any(queues):
        for q in queues:
            if q:
                order.append(q.pop(0))
    return order


def _todo(doc: Doc, score: float) -> dict[str, Any]:
    record: dict[str, Any] = {"text": doc.text, "label": None, "annotator": None, "category": None}
    record["source"] = doc.fields.get("url") or doc.fields.get("source") or doc.id
    if not np.isnan(score):
        record["note"] = f"model P(noise)={score:.3f}"
    return record


def write_todo(records: list[dict[str, Any]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
