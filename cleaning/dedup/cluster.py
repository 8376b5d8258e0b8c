"""The corpus-wide part of dedup, as map-reduce over shards with memory bounded by partition.

  map (per shard):        exact hash and MinHash signature of every document; the signatures
                          (.npy, read back by memory map), a small table per document, and band
                          keys + exact keys sorted into R partitions by key
  reduce (per partition): documents sharing an exact key or a band key are candidate pairs;
                          a pair is kept when its signatures agree on >= threshold (estimated
                          Jaccard), which removes LSH false positives at the cost of two reads
  resolve (driver):       connected components over the kept pairs only (scipy), one survivor
                          per component: lowest P(noise), then longest, then smallest id; every
                          other member is removed as an exact or near duplicate of the survivor
Documents are numbered (shard << 32) | row, so a number says where its signature is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from cleaning.dedup.minhash import MinHasher, band_keys, estimated_jaccard, strip
from cleaning.hosts import host_of

_ROW_BITS = np.uint64(32)
DOCS = "docs"
SIGS = "sigs"
KEYS = "keys"
EDGES = "edges"
REMOVALS = "removals"


SHINGLES = "shingles"


@dataclass(frozen=True)
class MapJob:
    shard: Path
    index: int
    work: Path
    hasher: MinHasher
    bands: int
    rows: int
    partitions: int
    keep_shingles: bool = False  # for exact verification of candidate pairs


def map_shard(job: MapJob) -> dict[str, int]:
    """Hash and sign one shard; write its document table, signatures and partitioned keys."""
    names = pq.read_schema(job.shard).names
    columns = ["id", "text", "source", "line", "url"] + (["quality_score"] if "quality_score" in names else [])
    table = pq.read_table(job.shard, columns=columns)
    texts = [strip(t) for t in table["text"].to_pylist()]
    n = len(texts)
    keys = (np.uint64(job.index) << _ROW_BITS) | np.arange(n, dtype=np.uint64)
    exact = np.array([xxhash.xxh3_128_intdigest(t.encode()) for t in texts], dtype=object)
    hi = np.array([int(x >> 64) for x in exact], dtype=np.uint64)
    lo = np.array([int(x & 0xFFFFFFFFFFFFFFFF) for x in exact], dtype=np.uint64)
    quality = table["quality_score"].to_numpy(zero_copy_only=False) if "quality_score" in names else np.full(n, np.nan)
    docs = pa.table(
        {
            "key": keys,
            "exact_hi": hi,
            "exact_lo": lo,
            "quality": np.asarray(quality, dtype=np.float32),
            "length": np.array([len(t) for t in texts], dtype=np.int64),
            "id": table["id"],
            "source": table["source"],
            "line": table["line"],
            "host": pa.array([host_of(u) for u in table["url"].to_pylist()], pa.string()),
        }
    )
    pq.write_table(docs, job.work / DOCS / f"{job.index:06d}.parquet")
    # Exact copies inside the shard are signed once; copies across shards are caught by exact keys.
    _, first, inverse = np.unique(np.stack([hi, lo], axis=1), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel().astype(np.int64)
    unique_sigs, hashes = job.hasher.signatures_and_hashes([texts[i] for i in first])
    sigs = unique_sigs[inverse]
    np.save(job.work / SIGS / f"{job.index:06d}.npy", sigs)
    if job.keep_shingles:
        _save_shingles(job, hashes, inverse)
    bands = band_keys(sigs, job.bands, job.rows)
    has_shingles = np.array([len(t) >= job.hasher.ngram for t in texts], dtype=bool)
    band_rows = np.repeat(keys[has_shingles], job.bands)
    band_values = bands[has_shingles].ravel()
    _spill(job, "band", band_values, band_rows)
    _spill(job, "exact", lo ^ (hi * np.uint64(0x9E3779B97F4A7C15)), keys, extra=hi)
    return {"docs": n, "signed": len(first)}


def _save_shingles(job: MapJob, hashes: list[np.ndarray], inverse: np.ndarray) -> None:
    """Each distinct text's shingle hashes as signed (repeats kept: sets are made only for the few
    documents verification asks about), and where every document's hashes start and end."""
    bounds = np.concatenate([[0], np.cumsum([len(x) for x in hashes])]).astype(np.int64)
    values = np.concatenate(hashes) if hashes else np.empty(0, np.uint32)
    np.save(job.work / SHINGLES / f"{job.index:06d}.values.npy", values)
    np.save(
        job.work / SHINGLES / f"{job.index:06d}.bounds.npy", np.stack([bounds[:-1][inverse], bounds[1:][inverse]], 1)
    )


class ShingleSets:
    """Random access to any document's shingle set, for the exact Jaccard of a candidate pair."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self._maps: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, key: int) -> np.ndarray:
        shard, row = int(key) >> 32, int(key) & 0xFFFFFFFF
        if shard not in self._maps:
            base = self.work / SHINGLES / f"{shard:06d}"
            self._maps[shard] = (
                np.load(f"{base}.values.npy", mmap_mode="r"),
                np.load(f"{base}.bounds.npy", mmap_mode="r"),
            )
        values, bounds = self._maps[shard]
        return np.unique(values[bounds[row, 0] : bounds[row, 1]])

    def jaccard(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = np.empty(len(u))
        for i, (a, b) in enumerate(zip(u.tolist(), v.tolist(), strict=True)):
            x, y = self.get(a), self.get(b)
            inter = len(np.intersect1d(x, y, assume_unique=True))
            union = len(x) + len(y) - inter
            out[i] = inter / union if union else 1.0
        return out


def _spill(job: MapJob, kind: str, values: np.ndarray, docs: np.ndarray, extra: np.ndarray | None = None) -> None:
    """Sort (value, doc) by partition and write them with partition offsets, one file per shard."""
    part = (values % np.uint64(job.partitions)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    offsets = np.searchsorted(part[order], np.arange(job.partitions + 1))
    payload = {"values": values[order], "docs": docs[order], "offsets": offsets}
    if extra is not None:
        payload["extra"] = extra[order]
    np.savez(job.work / KEYS / f"{kind}-{job.index:06d}.npz", **payload)


class Signatures:
    """Random access to any document's signature through memory-mapped per-shard files."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self._maps: dict[int, np.ndarray] = {}

    def get(self, keys: np.ndarray) -> np.ndarray:
        shards = (keys >> _ROW_BITS).astype(np.int64)
        rows = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
        out: np.ndarray | None = None
        for shard in np.unique(shards):
            if shard not in self._maps:
                self._maps[shard] = np.load(self.work / SIGS / f"{shard:06d}.npy", mmap_mode="r")
            sigs = self._maps[shard]
            if out is None:
                out = np.empty((len(keys), sigs.shape[1]), np.uint32)
            mask = shards == shard
            out[mask] = sigs[rows[mask]]
        return out if out is not None else np.empty((0, 0), np.uint32)


@dataclass(frozen=True)
class ReduceJob:
    work: Path
    partition: int
    shards: int
    threshold: float
    verify_margin: float | None = None  # exact Jaccard for candidates estimated within this of the threshold


def reduce_partition(job: ReduceJob) -> dict[str, int]:
    """Candidate pairs of one partition, kept when their estimated Jaccard reaches the threshold."""
    exact_u, exact_v = _pairs(job, "exact", with_extra=True)
    band_u, band_v = _pairs(job, "band", with_extra=False)
    if len(band_u):
        pairs = np.unique(np.stack([np.minimum(band_u, band_v), np.maximum(band_u, band_v)], axis=1), axis=0)
        band_u, band_v = pairs[:, 0], pairs[:, 1]
    sigs = Signatures(job.work)
    jaccard = estimated_jaccard(sigs.get(band_u), sigs.get(band_v)) if len(band_u) else np.empty(0)
    keep = jaccard >= job.threshold
    verified = 0
    if job.verify_margin is not None and len(band_u):
        near = np.abs(jaccard - job.threshold) <= job.verify_margin  # only where the estimate can be wrong
        exact = ShingleSets(job.work).jaccard(band_u[near], band_v[near])
        keep[near] = exact >= job.threshold
        verified = int(near.sum())
    np.savez(
        job.work / EDGES / f"{job.partition:05d}.npz",
        u=np.concatenate([exact_u, band_u[keep]]),
        v=np.concatenate([exact_v, band_v[keep]]),
    )
    return {"exact_pairs": len(exact_u), "candidates": len(band_u), "kept": int(keep.sum()), "verified": verified}


def _pairs(job: ReduceJob, kind: str, with_extra: bool) -> tuple[np.ndarray, np.ndarray]:
    """Star pairs (first member, other member) of every group of documents sharing a key."""
    values, docs, extra = [], [], []
    for shard in range(job.shards):
        with np.load(job.work / KEYS / f"{kind}-{shard:06d}.npz") as f:
            lo, hi = f["offsets"][job.partition], f["offsets"][job.partition + 1]
            values.append(f["values"][lo:hi])
            docs.append(f["docs"][lo:hi])
            if with_extra:
                extra.append(f["extra"][lo:hi])
    value = np.concatenate(values) if values else np.empty(0, np.uint64)
    doc = np.concatenate(docs) if docs else np.empty(0, np.uint64)
    tie = np.concatenate(extra) if with_extra and extra else np.zeros(len(value), np.uint64)
    order = np.lexsort((doc, tie, value))
    value, tie, doc = value[order], tie[order], doc[order]
    same = (value[1:] == value[:-1]) & (tie[1:] == tie[:-1])
    group_start = np.concatenate([[True], ~same]) if len(value) else np.empty(0, bool)
    first = np.maximum.accumulate(np.where(group_start, np.arange(len(value)), 0)) if len(value) else group_start
    member = ~group_start
    return doc[first[member]], doc[member]


@dataclass
class Resolution:
    removed: pa.Table  # source, line, id, kept_id, jaccard, reason
    stats: dict[str, Any]


def resolve(work: Path, partitions: int, exact_jaccard: bool = False) -> Resolution:
    """Connected components over kept pairs; one survivor each; the others removed, with evidence."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = [np.load(work / EDGES / f"{p:05d}.npz") for p in range(partitions)]
    u = np.concatenate([e["u"] for e in edges]) if edges else np.empty(0, np.uint64)
    v = np.concatenate([e["v"] for e in edges]) if edges else np.empty(0, np.uint64)
    nodes, index = np.unique(np.concatenate([u, v]), return_inverse=True)
    if not len(nodes):
        return Resolution(_empty_removals(), {"components": {}, "removed_exact": 0, "removed_near": 0, "hosts": []})
    n = len(nodes)
    graph = coo_matrix((np.ones(len(u)), (index[: len(u)], index[len(u) :])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    info = _node_table(work, nodes)  # Arrow columns: no Python object per document
    info = info.append_column("component", pa.array(component.astype(np.int64)))
    info = info.append_column(
        "rank_quality",
        pc.fill_null(pc.if_else(pc.is_nan(info["quality"]), pa.scalar(None, pa.float32()), info["quality"]), np.inf),
    )
    info = info.append_column("rank_length", pc.negate(info["length"]))
    order = pc.sort_indices(  # survivor first in its component: lowest P(noise), longest, smallest id
        info,
        [("component", "ascending"), ("rank_quality", "ascending"), ("rank_length", "ascending"), ("id", "ascending")],
    ).to_numpy()
    comp_sorted = component[order]
    starts = np.concatenate([[True], comp_sorted[1:] != comp_sorted[:-1]])
    first_of = np.full(component.max() + 1, -1)
    first_of[comp_sorted[starts]] = order[starts]
    survivor = first_of[component]
    removed = np.flatnonzero(survivor != np.arange(n))
    kept = survivor[removed]
    hi, lo = info["exact_hi"].to_numpy(), info["exact_lo"].to_numpy()
    exact = (hi[removed] == hi[kept]) & (lo[removed] == lo[kept])
    sigs = Signatures(work)
    jaccard = estimated_jaccard(sigs.get(nodes[removed]), sigs.get(nodes[kept])) if len(removed) else np.empty(0)
    if exact_jaccard and len(removed):  # verification on: report the exact value for every removal
        jaccard = ShingleSets(work).jaccard(nodes[removed], nodes[kept])
    jaccard = np.where(exact, 1.0, jaccard)
    taken = info.take(pa.array(removed))
    table = pa.table(
        {
            "source": taken["source"],
            "line": taken["line"],
            "id": taken["id"],
            "kept_id": info["id"].take(pa.array(kept)),
            "jaccard": pa.array(jaccard, pa.float32()),
            "reason": pa.array(np.where(exact, "dedup.exact", "dedup.near_duplicate"), pa.string()),
        }
    )
    host_counts = pc.value_counts(pc.drop_null(taken["host"])).to_pylist()
    hosts = Counter({h["values"]: h["counts"] for h in host_counts})
    sizes = Counter(Counter(component.tolist()).values())
    stats = {
        "components": {str(size): count for size, count in sorted(sizes.items())},
        "removed_exact": int(exact.sum()),
        "removed_near": int((~exact).sum()),
        "hosts": hosts.most_common(20),
    }
    return Resolution(table, stats)


def _node_table(work: Path, nodes: np.ndarray) -> pa.Table:
    """Attributes of the documents in some pair, read shard by shard, in `nodes` order."""
    parts = []
    for shard in np.unique((nodes >> _ROW_BITS).astype(np.int64)):
        table = pq.read_table(work / DOCS / f"{shard:06d}.parquet")
        keys = table["key"].to_numpy()
        parts.append(table.filter(pa.array(np.isin(keys, nodes))))
    table = pa.concat_tables(parts)
    order = np.argsort(table["key"].to_numpy())
    table = table.take(pa.array(order))
    assert np.array_equal(table["key"].to_numpy(), nodes)
    return table


def _empty_removals() -> pa.Table:
    return pa.table(
        {
            "source": pa.array([], pa.string()),
            "line": pa.array([], pa.int64()),
            "id": pa.array([], pa.string()),
            "kept_id": pa.array([], pa.string()),
            "jaccard": pa.array([], pa.float32()),
            "reason": pa.array([], pa.string()),
        }
    )


def removal_partition(source: str, partitions: int) -> int:
    return xxhash.xxh3_64_intdigest(source.encode()) % partitions
