"""The corpus-wide part of dedup, as map-reduce over shards with memory bounded by partition.

  map (per shard):        exact hash and MinHash signature of every document; the signatures
                          (.npy, read back by memory map), a small table per document, and band
                          keys + exact keys sorted into R partitions by key
  reduce (per partition): documents sharing an exact key are exact pairs; documents sharing a
                          band key are candidate pairs, every pair of a bucket (exact copies in it
                          collapsed first; in a bucket over `max_bucket` members each member is
                          paired with the next max_bucket - 1 only, counted and reported); a pair
                          is kept when its signatures agree on >= threshold (estimated Jaccard),
                          exact Jaccard near the threshold when verification is on
  resolve (per group of components, see `survivors`): over the kept pairs, in survivor order
                          (lowest P(noise), then longest, then smallest id), the best undecided
                          document is kept and removes its undecided neighbours, then the next. So
                          every removed document has J >= threshold with the kept document it names
                          (checked exactly when verification is on: a removal under the threshold
                          is undone), never with a chain of documents in between
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
from cleaning.errors import CleaningError
from cleaning.hosts import host_of

ROW_BITS = np.uint64(32)
DOCS = "docs"
SIGS = "sigs"
KEYS = "keys"
EDGES = "edges"
PAIRS = "pairs"  # with dedup.keep_pairs: the pairs found, in the artifacts
REMOVALS = "removals"


SHINGLES = "shingles"
OPEN_SHARDS = 256  # shingle files a process keeps open at once
PAIR_CHUNK = 65_536  # candidate pairs judged at once in a reducer: about 70 MB of signatures
HOSTS_KEPT = 100  # hosts with the most removals a group reports (the stage keeps the top 20 of the sums)


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
    keys = (np.uint64(job.index) << ROW_BITS) | np.arange(n, dtype=np.uint64)
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
    exact_key = lo ^ (hi * np.uint64(0x9E3779B97F4A7C15))
    bands = band_keys(sigs, job.bands, job.rows)
    # one document per distinct text of the shard goes into the band buckets: its copies are paired
    # with it by exact keys, and a bucket of many copies would make many pairs saying nothing new
    signed = np.zeros(n, dtype=bool)
    signed[first] = True
    has_shingles = np.array([len(t) >= job.hasher.ngram for t in texts], dtype=bool) & signed
    band_rows = np.repeat(keys[has_shingles], job.bands)
    band_values = bands[has_shingles].ravel()
    _spill(job, "band", band_values, band_rows, extra=np.repeat(exact_key[has_shingles], job.bands))
    _spill(job, "exact", exact_key, keys, extra=hi)
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
    """Random access to any document's shingle set, for the exact Jaccard of a candidate pair.
    A document of a duplicate group is in many pairs: its set is made once (at most `cache` kept)."""

    def __init__(self, work: Path, cache: int = 4096) -> None:
        self.work = work
        self._maps: dict[int, tuple[Any, int, np.dtype, np.ndarray]] = {}
        self._sets: dict[int, np.ndarray] = {}
        self._cache = cache

    def get(self, key: int) -> np.ndarray:
        found = self._sets.get(key)
        if found is None:
            if len(self._sets) >= self._cache:
                self._sets.pop(next(iter(self._sets)))
            found = self._sets[key] = self._read(key)
        return found

    def _read(self, key: int) -> np.ndarray:
        """Read with a seek, not through a memory map: a map would keep every page of every shard's
        shingles it touched resident in this process (GBs in the survivor step of a large run)."""
        shard, row = int(key) >> 32, int(key) & 0xFFFFFFFF
        if shard not in self._maps:
            if len(self._maps) >= OPEN_SHARDS:  # file handles are limited too
                self._maps.pop(next(iter(self._maps)))[0].close()
            path = self.work / SHINGLES / f"{shard:06d}.values.npy"
            handle = path.open("rb")
            version = np.lib.format.read_magic(handle)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            _, _, dtype = header(handle)
            bounds = np.load(self.work / SHINGLES / f"{shard:06d}.bounds.npy", mmap_mode="r")
            self._maps[shard] = (handle, handle.tell(), np.dtype(dtype), bounds)
        handle, start, dtype, bounds = self._maps[shard]
        lo, hi = int(bounds[row, 0]), int(bounds[row, 1])
        handle.seek(start + lo * dtype.itemsize)
        hashes = np.sort(np.fromfile(handle, dtype, hi - lo))  # np.unique is 4x slower on these sizes
        return hashes[np.concatenate(([True], hashes[1:] != hashes[:-1]))] if len(hashes) else hashes

    def jaccard(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = np.empty(len(u))
        for i, (a, b) in enumerate(zip(u.tolist(), v.tolist(), strict=True)):
            x, y = self.get(a), self.get(b)
            if len(x) < len(y):
                x, y = y, x
            at = np.searchsorted(x, y)  # both sorted and unique: y's members found in x
            inter = int((x[np.minimum(at, len(x) - 1)] == y).sum()) if len(x) else 0
            union = len(x) + len(y) - inter
            out[i] = inter / union if union else 1.0
        return out


SPILLED = ("values", "docs", "extra")


def _spill(job: MapJob, kind: str, values: np.ndarray, docs: np.ndarray, extra: np.ndarray) -> None:
    """Sort (value, doc, exact key) by partition and write them with partition offsets, one .npy per
    column: a reducer memory-maps them and reads only its slice, so each spill is read about once
    in all (an .npz is read whole by every reducer: shards x partitions)."""
    part = (values % np.uint64(job.partitions)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    stem = job.work / KEYS / f"{kind}-{job.index:06d}"
    np.save(f"{stem}.offsets.npy", np.searchsorted(part[order], np.arange(job.partitions + 1)))
    for name, column in zip(SPILLED, (values, docs, extra), strict=True):
        np.save(f"{stem}.{name}.npy", column[order])


class Signatures:
    """Random access to any document's signature through memory-mapped per-shard files, mapped
    for one call only: pages a kept map touched would stay resident and grow with the corpus."""

    def __init__(self, work: Path) -> None:
        self.work = work

    def get(self, keys: np.ndarray) -> np.ndarray:
        shards = (keys >> ROW_BITS).astype(np.int64)
        rows = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
        out: np.ndarray | None = None
        for shard in np.unique(shards):
            sigs = np.load(self.work / SIGS / f"{shard:06d}.npy", mmap_mode="r")
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
    bands: int  # the LSH layout and partition count of the map step (to find which reducer owns a pair)
    rows: int
    partitions: int
    threshold: float
    verify_margin: float | None = None  # exact Jaccard for candidates estimated within this of the threshold
    max_bucket: int = 100  # in a larger band bucket each member is paired with the next max_bucket - 1 only


def reduce_partition(job: ReduceJob) -> dict[str, int]:
    """Pairs of one partition: exact copies, and candidates kept when their Jaccard reaches the threshold."""
    value, exact_key, doc = _load(job, "exact")
    exact_u, exact_v = _star_pairs(value, exact_key, doc)
    value, exact_key, doc = _load(job, "band")
    band_u, band_v, giant = _bucket_pairs(value, exact_key, doc, job.max_bucket)
    if len(band_u):
        pairs = np.unique(np.stack([np.minimum(band_u, band_v), np.maximum(band_u, band_v)], axis=1), axis=0)
        band_u, band_v = pairs[:, 0], pairs[:, 1]
    sigs, shingles = Signatures(job.work), ShingleSets(job.work)
    parts = [
        _judge(band_u[i : i + PAIR_CHUNK], band_v[i : i + PAIR_CHUNK], sigs, shingles, job)
        for i in range(0, len(band_u), PAIR_CHUNK)
    ]
    u, v, jaccard = (np.concatenate([p[i] for p in parts]) if parts else np.empty(0) for i in range(3))
    np.savez(
        job.work / EDGES / f"{job.partition:05d}.npz",
        u=np.concatenate([exact_u, u.astype(np.uint64)]),
        v=np.concatenate([exact_v, v.astype(np.uint64)]),
        jaccard=np.concatenate([np.ones(len(exact_u)), jaccard]).astype(np.float32),
    )
    candidates, verified = sum(p[3] for p in parts), sum(p[4] for p in parts)
    return {"exact_pairs": len(exact_u), "candidates": candidates, "kept": len(u), "verified": verified, **giant}


def _judge(
    u: np.ndarray, v: np.ndarray, sigs: Signatures, shingles: ShingleSets, job: ReduceJob
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """One chunk of a partition's candidate pairs (memory bounded by PAIR_CHUNK, not by how many
    pairs the duplicates of a corpus make): the pairs this partition owns whose Jaccard reaches the
    threshold, with it; and how many were owned and verified exactly."""
    sig_u, sig_v = sigs.get(u), sigs.get(v)
    mine = _owner(sig_u, sig_v, job) == job.partition  # a pair meets in each partition of a shared band
    u, v, sig_u, sig_v = u[mine], v[mine], sig_u[mine], sig_v[mine]
    jaccard = estimated_jaccard(sig_u, sig_v)
    keep = jaccard >= job.threshold
    verified = 0
    if job.verify_margin is not None:
        near = np.abs(jaccard - job.threshold) <= job.verify_margin  # only where the estimate can be wrong
        exact = shingles.jaccard(u[near], v[near])
        jaccard[near] = exact
        keep[near] = exact >= job.threshold
        verified = int(near.sum())
    return u[keep], v[keep], jaccard[keep], len(u), verified


def _owner(sig_u: np.ndarray, sig_v: np.ndarray, job: ReduceJob) -> np.ndarray:
    """The partition of the first band key a pair shares: the one reducer that judges the pair. (If
    that key's bucket is giant and the pair fell outside its window, the pair is among the counted
    `pairs_not_compared`.)"""
    ku, kv = band_keys(sig_u, job.bands, job.rows), band_keys(sig_v, job.bands, job.rows)
    same = ku == kv
    first = np.argmax(same, axis=1)
    return (ku[np.arange(len(ku)), first] % np.uint64(job.partitions)).astype(np.int64)


def _load(job: ReduceJob, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key, exact key, document) of this partition from every shard's spill, sorted."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in SPILLED}
    for shard in range(job.shards):
        stem = job.work / KEYS / f"{kind}-{shard:06d}"
        offsets = np.load(f"{stem}.offsets.npy")
        lo, hi = int(offsets[job.partition]), int(offsets[job.partition + 1])
        if hi > lo:
            for name in SPILLED:
                columns[name].append(np.array(np.load(f"{stem}.{name}.npy", mmap_mode="r")[lo:hi]))
    value, doc, tie = (np.concatenate(columns[n]) if columns[n] else np.empty(0, np.uint64) for n in SPILLED)
    order = np.lexsort((doc, tie, value))
    return value[order], tie[order], doc[order]


def _star_pairs(value: np.ndarray, tie: np.ndarray, doc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first member, other member) of every group sharing (value, tie): exact copies are all alike,
    so the star is as good as every pair."""
    if not len(value):
        return doc, doc
    same = (value[1:] == value[:-1]) & (tie[1:] == tie[:-1])
    group_start = np.concatenate([[True], ~same])
    first = np.maximum.accumulate(np.where(group_start, np.arange(len(value)), 0))
    member = ~group_start
    return doc[first[member]], doc[member]


def _bucket_pairs(
    value: np.ndarray, exact_key: np.ndarray, doc: np.ndarray, max_bucket: int
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Every pair of documents sharing a band key, after collapsing exact copies (same exact key) to
    their first document; in a bucket larger than `max_bucket` each member is paired with the next
    max_bucket - 1 members only (linear, not quadratic), and the pairs so left out are counted."""
    if len(value):  # input is sorted by (value, exact key, doc): the first of each copy group stays
        distinct = np.concatenate([[True], (value[1:] != value[:-1]) | (exact_key[1:] != exact_key[:-1])])
        value, doc = value[distinct], doc[distinct]
    starts = np.flatnonzero(np.concatenate([[True], value[1:] != value[:-1]])) if len(value) else np.empty(0, int)
    sizes = np.diff(np.append(starts, len(value)))
    group = np.repeat(np.arange(len(starts)), sizes)
    us, vs = [], []
    for offset in range(1, int(min(sizes.max(initial=1), max_bucket))):
        same = group[offset:] == group[:-offset]
        us.append(doc[:-offset][same])
        vs.append(doc[offset:][same])
    big = sizes[sizes > max_bucket].astype(np.int64)
    compared = big * (max_bucket - 1) - (max_bucket - 1) * max_bucket // 2
    giant = {
        "giant_buckets": len(big),
        "giant_bucket_max": int(big.max(initial=0)),
        "pairs_not_compared": int((big * (big - 1) // 2 - compared).sum()),
    }
    empty = np.empty(0, np.uint64)
    return (np.concatenate(us) if us else empty), (np.concatenate(vs) if vs else empty), giant


@dataclass
class PairsJob:
    work: Path
    partition: int  # a reduce partition: EDGES/{p}.npz
    out: Path  # the stage's artifacts folder: PAIRS/{p}.parquet goes there


def write_pairs(job: PairsJob) -> int:
    """One partition's pairs found at or above the threshold (exact copies as a star around their
    first copy: Jaccard 1), with document ids: what dedup found, before it chose survivors. Ids are
    read per shard the pairs touch, so memory follows the partition and the shard size."""
    with np.load(job.work / EDGES / f"{job.partition:05d}.npz") as e:
        u, v, jaccard = e["u"], e["v"], e["jaccard"]
    keys = np.concatenate([u, v])
    ids = np.empty(keys.size, dtype=object)
    shard = (keys >> ROW_BITS).astype(np.int64)
    row = (keys & np.uint64((1 << 32) - 1)).astype(np.int64)
    for s in np.unique(shard).tolist():
        table = pq.read_table(job.work / DOCS / f"{s:06d}.parquet", columns=["id"])
        column = table["id"].to_numpy(zero_copy_only=False)
        here = shard == s
        ids[here] = column[row[here]]
    folder = job.out / PAIRS
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"id_a": ids[: u.size].tolist(), "id_b": ids[u.size :].tolist(), "jaccard": jaccard})
    pq.write_table(table, folder / f"{job.partition:05d}.parquet")
    return table.num_rows


@dataclass
class Resolution:
    removed: pa.Table  # source, line, id, kept_id, jaccard, reason
    stats: dict[str, Any]


def resolve_edges(
    work: Path,
    u: np.ndarray,
    v: np.ndarray,
    pair_jaccard: np.ndarray,
    info: pa.Table | None,
    threshold: float,
    exact_jaccard: bool = False,
) -> Resolution:
    """Survivors and removals over some kept pairs (whole components: `survivors` deals them out),
    with `info` the attributes of every document in them sorted by key: each removal names a kept
    document it is similar to."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes, index = np.unique(np.concatenate([u, v]), return_inverse=True)
    if not len(nodes) or info is None:
        return Resolution(_empty_removals(), {"components": {}, "removed_exact": 0, "removed_near": 0, "hosts": []})
    if not np.array_equal(info["key"].to_numpy(), nodes):
        raise CleaningError("dedup: document attributes do not match the documents of the pairs")
    n = len(nodes)
    a, b = index[: len(u)], index[len(u) :]
    graph = coo_matrix((np.ones(2 * len(u)), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n)).tocsr()
    _, component = connected_components(graph, directed=False)
    is_exact = pair_jaccard >= 1.0
    copies = coo_matrix((np.ones(int(is_exact.sum())), (a[is_exact], b[is_exact])), shape=(n, n))
    _, copy_group = connected_components(copies, directed=False)
    info = info.append_column(
        "rank_quality",
        pc.fill_null(pc.if_else(pc.is_nan(info["quality"]), pa.scalar(None, pa.float32()), info["quality"]), np.inf),
    )
    info = info.append_column("rank_length", pc.negate(info["length"]))
    order = pc.sort_indices(  # the survivor order: lowest P(noise), longest, smallest id
        info, [("rank_quality", "ascending"), ("rank_length", "ascending"), ("id", "ascending")]
    ).to_numpy()
    kept_of = _greedy_survivors(graph, copy_group, order)
    removed = np.flatnonzero(kept_of >= 0)
    kept = kept_of[removed]
    hi, lo = info["exact_hi"].to_numpy(), info["exact_lo"].to_numpy()
    exact = (hi[removed] == hi[kept]) & (lo[removed] == lo[kept])
    if not len(removed):
        jaccard = np.empty(0)
    elif exact_jaccard:  # verification on: the exact value for every removal
        jaccard = ShingleSets(work).jaccard(nodes[removed], nodes[kept])
    else:
        sigs = Signatures(work)
        jaccard = estimated_jaccard(sigs.get(nodes[removed]), sigs.get(nodes[kept]))
    jaccard = np.where(exact, 1.0, jaccard)
    # An edge kept on its estimate alone (far above the threshold) can be under it exactly: such a
    # removal is undone. Nothing names an undone document as its kept copy, so nothing else changes.
    below = jaccard < threshold
    removed, kept, exact, jaccard = removed[~below], kept[~below], exact[~below], jaccard[~below]
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
    hosts = sorted(((h["values"], h["counts"]) for h in host_counts), key=lambda hc: (-hc[1], hc[0]))
    sizes = Counter(Counter(component.tolist()).values())
    stats = {
        "components": {str(size): count for size, count in sorted(sizes.items())},
        "removed_exact": int(exact.sum()),
        "removed_near": int((~exact).sum()),
        "kept_below_threshold": int(below.sum()),
        "hosts": hosts[:HOSTS_KEPT],
    }
    return Resolution(table, stats)


def _greedy_survivors(graph: Any, copy_group: np.ndarray, order: np.ndarray) -> np.ndarray:
    """For each node, the node it is removed for (-1: kept). Nodes are taken in `order`; an
    undecided node is kept and removes its undecided neighbours and those of its exact copies (the
    same text: a pair over the threshold with one is one with the other). So a removed node's kept
    node is always a document it is similar to, and is never removed itself."""
    indptr, indices = graph.indptr, graph.indices
    sizes = np.bincount(copy_group)
    by_group = np.argsort(copy_group, kind="stable")
    group_start = np.concatenate([[0], np.cumsum(sizes)])

    def with_copies(nodes: np.ndarray) -> np.ndarray:
        groups = np.unique(copy_group[nodes])
        groups = groups[sizes[groups] > 1]
        if not len(groups):
            return nodes
        return np.unique(np.concatenate([nodes, *(by_group[group_start[g] : group_start[g + 1]] for g in groups)]))

    kept_of = np.full(len(order), -1, dtype=np.int64)
    decided = np.zeros(len(order), dtype=bool)
    for node in order.tolist():
        if decided[node]:
            continue
        decided[node] = True
        members = with_copies(np.array([node]))
        neighbours = with_copies(np.concatenate([indices[indptr[m] : indptr[m + 1]] for m in members.tolist()]))
        fresh = neighbours[~decided[neighbours]]
        decided[fresh] = True
        kept_of[fresh] = node
    return kept_of


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
