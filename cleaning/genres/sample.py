"""Corpus-wide sampling for the genres step: text to train embeddings on, vectors to fit k-means on.

Both samples pick documents by a salted hash of their id, so they are deterministic, spread
over every shard, independent of shard order, and never need the whole corpus in memory.
Each function runs per shard inside a worker (`PrepareContext.map`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import xxhash

from cleaning.genres.embeddings import Embedder
from cleaning.genres.lsa import LsaEmbedder

_EMBEDDERS: dict[tuple[object, ...], Embedder | LsaEmbedder] = {}  # per worker process: load the model once


def chosen(doc_id: str, salt: str, rate: float) -> bool:
    """Whether a document is in a sample of `rate` (0..1), by a salted hash of its id."""
    return xxhash.xxh3_64_intdigest(f"{salt}\x1f{doc_id}".encode()) < rate * 2.0**64


def shard_size(shard: Path) -> tuple[int, int]:
    """Documents and bytes of text in a shard, from Parquet metadata (nothing is read)."""
    meta = pq.ParquetFile(shard).metadata
    text = meta.schema.to_arrow_schema().get_field_index("text")
    size = sum(meta.row_group(i).column(text).total_uncompressed_size for i in range(meta.num_row_groups))
    return meta.num_rows, size


@dataclass(frozen=True)
class TextJob:
    shard: Path
    out: Path
    rate: float
    max_doc_chars: int


def write_training_text(job: TextJob) -> tuple[int, int]:
    """Write the sampled documents of one shard, one per line (NFKC); returns (docs, chars)."""
    table = pq.read_table(job.shard, columns=["id", "text"])
    docs = chars = 0
    with job.out.open("w", encoding="utf-8") as f:
        for doc_id, text in zip(table["id"].to_pylist(), table["text"].to_pylist(), strict=True):
            if chosen(doc_id, "train", job.rate):
                line = " ".join(unicodedata.normalize("NFKC", text[: job.max_doc_chars]).split())
                if line:
                    f.write(line + "\n")
                    docs += 1
                    chars += len(line)
    return docs, chars


@dataclass(frozen=True)
class EmbedSpec:
    """Everything a worker needs to build the same Embedder as every other worker."""

    model: Path
    representation: str
    sif_a: float
    pieces: Path | None = None
    common: Path | None = None
    method: str = "fasttext"  # or lsa (`model` is then the .npz of cleaning.genres.lsa)


@dataclass(frozen=True)
class VectorJob:
    shard: Path
    out: Path
    rate: float
    spec: EmbedSpec


def write_sample_vectors(job: VectorJob) -> int:
    """Embed the sampled documents of one shard into an .npy file; returns how many."""
    table = pq.read_table(job.shard, columns=["id", "text"])
    ids, all_texts = table["id"].to_pylist(), table["text"].to_pylist()
    texts = [t for i, t in zip(ids, all_texts, strict=True) if chosen(i, "fit", job.rate)]
    vectors = np.empty((0, 0), np.float32)
    if texts:
        embedder = embedder_for(job.spec)
        parts = [embedder.embed(texts[i : i + 1024]) for i in range(0, len(texts), 1024)]
        vectors = np.concatenate([v[c > 0] for v, c in parts])  # documents without known tokens fit nothing
    np.save(job.out, vectors)
    return len(vectors)


def embedder_for(spec: EmbedSpec) -> Embedder | LsaEmbedder:
    """One Embedder per worker process and spec (a model retrained in place is reloaded)."""
    files = (spec.model, spec.pieces, spec.common)
    key = (spec, tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in files if p is not None))
    if key not in _EMBEDDERS:
        _EMBEDDERS.clear()
        if spec.method == "lsa":
            assert spec.pieces is not None
            _EMBEDDERS[key] = LsaEmbedder(spec.model, spec.pieces)
        else:
            direction = np.load(spec.common) if spec.common is not None else None
            _EMBEDDERS[key] = Embedder(spec.model, spec.representation, spec.sif_a, direction, spec.pieces)
    return _EMBEDDERS[key]
