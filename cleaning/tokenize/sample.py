"""Pick the tokenizer's training text across genre clusters, so no genre dominates the vocabulary.

Every cluster gets the same budget of documents (water-filling: small clusters give all they
have, the rest is shared by the larger ones); the budget is the sample size over the corpus's
mean document size. Counting reads only the cluster column; documents are then chosen by a
salted hash of their id, so the sample is deterministic and spread over every shard. Without a
`cluster` column the sample is uniform. Both passes run per shard in workers (`PrepareContext.map`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

SALT = "tokenizer"
NO_CLUSTER = -1


def cluster_docs(shard: Path) -> Counter[int]:
    """Documents per cluster in one shard, from the cluster column alone (cluster -1 without genres)."""
    pf = pq.ParquetFile(shard)
    if "cluster" not in pf.schema_arrow.names:
        return Counter({NO_CLUSTER: pf.metadata.num_rows})
    counts = pc.value_counts(pf.read(columns=["cluster"])["cluster"].combine_chunks().fill_null(NO_CLUSTER))
    return Counter({int(c["values"]): int(c["counts"]) for c in counts.to_pylist()})


def cluster_rates(sizes: Counter[int], budget: float) -> dict[int, float]:
    """Share of each cluster to sample so clusters contribute equally, `budget` documents in all."""
    if not sizes:
        return {}
    remaining, cap = budget, 0.0
    ordered = sorted(sizes.values())
    for i, size in enumerate(ordered):  # water-filling: raise the cap until the budget is spent
        share = remaining / (len(ordered) - i)
        if size >= share:
            cap = share
            break
        remaining -= size
    else:
        cap = float(ordered[-1])
    return {c: min(1.0, cap / s) if s else 1.0 for c, s in sizes.items()}


@dataclass(frozen=True)
class SampleJob:
    shard: Path
    out: Path
    rates: dict[int, float]
    max_line_chars: int = 4_000  # sentencepiece skips longer sentences; cut them instead


def write_sample(job: SampleJob) -> tuple[int, int, int]:
    """Write the chosen documents of one shard, one line of text per line; returns (docs, bytes, digest).

    The digest is a sum of per-document hashes: equal for the same documents in any order or file."""
    pf = pq.ParquetFile(job.shard)
    columns = ["id", "text"] + (["cluster"] if "cluster" in pf.schema_arrow.names else [])
    table = pf.read(columns=columns)
    clusters = table["cluster"].to_pylist() if "cluster" in columns else [NO_CLUSTER] * table.num_rows
    docs = size = digest = 0
    with job.out.open("w", encoding="utf-8") as f:
        for doc_id, text, cluster in zip(table["id"].to_pylist(), table["text"].to_pylist(), clusters, strict=True):
            rate = job.rates.get(NO_CLUSTER if cluster is None else cluster, 0.0)
            if xxhash.xxh3_64_intdigest(f"{SALT}\x1f{doc_id}".encode()) >= rate * 2.0**64:
                continue
            docs += 1
            digest = (digest + xxhash.xxh3_64_intdigest(f"{doc_id}\x1f{text}".encode())) % 2**64
            for line in text.split("\n"):
                if line.strip():
                    line = line[: job.max_line_chars]
                    f.write(line + "\n")
                    size += len(line.encode()) + 1
    return docs, size, digest
