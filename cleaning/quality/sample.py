"""Active learning: pick what annotators should label next, as excerpts the size the model reads.

The model scores ~300-character chunks, so each document to label becomes one chunk of it (the one
fastText is least sure about), with the document's id and url to open the whole page. `uncertain`
ranks documents by how close their P(noise) is to the threshold the run applies, not to 0.5.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from cleaning.document import Doc
from cleaning.errors import CleaningError
from cleaning.quality import model as qm
from cleaning.readers import BadRecord, ReaderConfig, read_records

STRATEGIES = ("uncertain", "random", "per-cluster")


def read_corpus(paths: list[Path]) -> list[Doc]:
    """Documents of JSONL/Parquet input files, or of a run's shard folders (their columns, such as
    `cluster` and `quality_score`, become fields)."""
    docs: list[Doc] = []
    for path in paths:
        files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            raise CleaningError(f"corpus not found or empty: {path}")
        for f in files:
            if f.suffix == ".parquet" and {"id", "text"} <= set(pq.read_schema(f).names):
                for row in pq.read_table(f).to_pylist():
                    docs.append(Doc(str(row.pop("id")), row.pop("text") or "", row))
            else:
                docs.extend(d for d in read_records(f, f.name, ReaderConfig()) if not isinstance(d, BadRecord))
    return docs


def sample(
    docs: list[Doc], n: int, strategy: str, model: qm.QualityModel | None, threshold: float | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """`uncertain`: P(noise) closest to the threshold first; `random`; `per-cluster`: round-robin over
    the `cluster` column (from the genres stage), most uncertain first within each cluster."""
    if strategy not in STRATEGIES:
        raise CleaningError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if strategy == "per-cluster" and not any("cluster" in d.fields for d in docs):
        raise CleaningError(
            "per-cluster sampling needs a `cluster` column: give a run's output folder (after its genres stage)"
        )
    if model is None and strategy != "random":
        raise CleaningError(f"--strategy {strategy} needs a quality model: give a run's output folder or --model")
    t = float(threshold if threshold is not None else (model.threshold if model else 0.5))
    scores = model.score([d.text for d in docs]) if model else np.full(len(docs), np.nan)
    order = list(range(len(docs)))
    if strategy == "random":
        random.Random(seed).shuffle(order)
    elif strategy == "uncertain":
        order.sort(key=lambda i: abs(scores[i] - t))
    else:
        order = _round_robin(docs, scores, t)
    chosen = order[:n]
    return [_todo(docs[i], scores[i], t, model) for i in chosen]


def _round_robin(docs: list[Doc], scores: np.ndarray, threshold: float) -> list[int]:
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


def _todo(doc: Doc, score: float, threshold: float, model: qm.QualityModel | None) -> dict[str, Any]:
    """One excerpt to label: the chunk fastText is least sure about, and where to find its page."""
    chunk_chars = model.chunk_chars if model else 300
    pieces = qm.chunks(doc.text, chunk_chars)
    pick = 0
    if model and len(pieces) > 1:
        p = qm.p_noise(model.fasttext, [qm.tokens(x, model.representation) for x in pieces])
        pick = int(np.argmin(np.abs(p - threshold)))
    record: dict[str, Any] = {"text": pieces[pick], "label": None, "annotator": None, "category": None}
    record["source"] = doc.id
    url = doc.fields.get("url")
    if url:
        record["url"] = url
    where = f"excerpt {pick + 1}/{len(pieces)} of document {doc.id}"
    record["note"] = where if np.isnan(score) else f"{where}; P(noise)={score:.3f}, threshold {threshold:.3f}"
    return record


def write_todo(records: list[dict[str, Any]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
