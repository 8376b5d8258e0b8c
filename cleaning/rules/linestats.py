"""How common each line is in the corpus: on how many pages of its own site, and on how many sites.

A corpus-wide map-reduce in the rules stage's `prepare` step. Memory is bounded by partition, and
every count is over distinct pages, so the same page crawled twice (in one shard or in two) counts
once and the result does not depend on how the input was split into files.

  map    (per shard):  for every distinct page, (site-line key, page id) rows bucketed by host,
                       (host, page id) rows for the site's page count, and (line, host) rows
                       bucketed by line for the cross-site count, into 4,096 buckets; .npy files
                       per kind with bucket offsets, so a reducer reads only its slice
  plan   (driver):     bucket sizes summed over the spills, then cut into consecutive ranges of
                       about `partition_mb` of spill each: the partition count follows the data
                       (a reducer needs several times its spill), not a constant
  reduce (per range):  distinct pages per site-line key and per host, distinct hosts per line;
                       keys seen on at least two pages (or two hosts) are kept, sorted
  join   (driver):     the ranges' tables copied into one file per kind, streaming

Workers memory-map the sorted arrays of the result (eight files, however many partitions), so
lookups cost a binary search and the operating system shares one copy between a machine's workers.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from cleaning.errors import CleaningError
from cleaning.hosts import host_of
from cleaning.rules.linefeatures import DocLines, LineStats
from cleaning.rules.linescan import Scanned, line_hashes

META = "linestats.json"
_MIX = np.uint64(0x9E3779B97F4A7C15)
_KINDS = ("site", "hosts", "lines", "tmpl")
BUCKETS = 4096  # spill buckets; partitions are ranges of them
ROW_BYTES = 12  # a spilled row: uint64 key and uint32 value


def host_hash(host: str) -> np.uint64:
    return np.uint64(xxhash.xxh3_64_intdigest(host.encode("utf-8", "surrogatepass")))


def site_keys(lines_h: np.ndarray, host_h: np.uint64) -> np.ndarray:
    """One key per (site, line): mixes the two hashes (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        return lines_h ^ (host_h * _MIX + np.uint64(1))


@dataclass(frozen=True)
class MapJob:
    shard: Path
    spill: Path


@dataclass(frozen=True)
class ReduceJob:
    spill: Path
    out: Path
    partition: int
    buckets: tuple[int, int]  # the range of spill buckets this partition reduces
    stems: tuple[str, ...]


def map_shard(job: MapJob) -> int:
    """Spill the rows of one shard, sorted by partition; returns the distinct pages it holds."""
    table = pq.read_table(job.shard, columns=["text", "url"])
    page_hosts: list[int] = []
    page_ids: list[int] = []
    lines: list[str] = []
    owner: list[int] = []
    seen: set[tuple[str, int]] = set()
    for text, url in zip(table["text"].to_pylist(), table["url"].to_pylist(), strict=True):
        host = host_of(url)
        if host is None:
            continue
        page = xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass")) & 0xFFFFFFFF
        if (host, page) in seen:
            continue  # the same page twice in this shard (across shards, the reducers count it once)
        seen.add((host, page))
        stripped = [s for s in (line.strip() for line in text.split("\n")) if s]
        owner.extend([len(page_ids)] * len(stripped))
        lines.extend(stripped)
        page_hosts.append(int(host_hash(host)))
        page_ids.append(page)
    hosts = np.array(page_hosts, dtype=np.uint64)
    pages = np.array(page_ids, dtype=np.uint32)
    of = np.array(owner, dtype=np.int64)
    sc = Scanned.of(lines)
    # each line once per page: (page, line) pairs made unique
    with np.errstate(over="ignore"):
        pair = sc.hashes ^ (of.astype(np.uint64) * _MIX)
    _, first = np.unique(pair, return_index=True)
    lh, lo = sc.hashes[first], of[first]
    line_hosts = hosts[lo]
    parts = np.uint64(BUCKETS)
    # the site of a site-line key is not recoverable from the key, so partition its rows by host
    _spill(job, "site", line_hosts % parts, site_keys(lh, line_hosts), pages[lo])
    _spill(job, "hosts", hosts % parts, hosts, pages)
    _spill(job, "lines", lh % parts, lh, (line_hosts & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    t = np.flatnonzero(sc.has_template)
    with np.errstate(over="ignore"):
        tpair = sc.templates[t] ^ (of[t].astype(np.uint64) * _MIX)
    _, tfirst = np.unique(tpair, return_index=True)
    th, to = sc.templates[t][tfirst], of[t][tfirst]
    _spill(job, "tmpl", hosts[to] % parts, site_keys(th, hosts[to]), pages[to])
    return len(seen)


def _cat(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.empty(0, dtype)


def _spill(job: MapJob, kind: str, part: np.ndarray, keys: np.ndarray, values: np.ndarray) -> None:
    """Rows sorted by partition, with the offsets of each partition: a reducer reads only its slice."""
    order = np.argsort(part, kind="stable")
    offsets = np.searchsorted(part[order], np.arange(BUCKETS + 1, dtype=np.uint64)).astype(np.int64)
    stem = job.spill / f"{job.shard.stem}.{kind}"
    np.save(f"{stem}.keys.npy", keys[order])
    np.save(f"{stem}.values.npy", values[order])
    np.save(f"{stem}.offsets.npy", offsets)


def _load_part(job: ReduceJob, kind: str) -> tuple[np.ndarray, np.ndarray]:
    keys, values = [], []
    for stem in job.stems:
        base = job.spill / f"{stem}.{kind}"
        offsets = np.load(f"{base}.offsets.npy")
        lo, hi = int(offsets[job.buckets[0]]), int(offsets[job.buckets[1]])
        if hi > lo:
            keys.append(np.array(np.load(f"{base}.keys.npy", mmap_mode="r")[lo:hi]))
            values.append(np.array(np.load(f"{base}.values.npy", mmap_mode="r")[lo:hi]))
    return _cat(keys, np.uint64), _cat(values, np.uint32)


def _distinct_counts(keys: np.ndarray, values: np.ndarray, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    """For each key, how many distinct values it was seen with; keys below `minimum` are dropped."""
    if keys.size == 0:
        return np.empty(0, np.uint64), np.empty(0, np.uint32)
    order = np.lexsort((values, keys))
    k, v = keys[order], values[order]
    new = np.ones(k.size, dtype=bool)
    new[1:] = (k[1:] != k[:-1]) | (v[1:] != v[:-1])
    uk, counts = np.unique(k[new], return_counts=True)
    keep = counts >= minimum
    return uk[keep], counts[keep].astype(np.uint32)


def reduce_partition(job: ReduceJob) -> int:
    """Write the sorted tables of one partition; returns the number of sites in it."""
    for kind, minimum in (("site", 2), ("hosts", 1), ("lines", 2), ("tmpl", 2)):
        keys, counts = _distinct_counts(*_load_part(job, kind), minimum)
        np.save(job.out / f"{kind}.{job.partition:04d}.keys.npy", keys)
        np.save(job.out / f"{kind}.{job.partition:04d}.counts.npy", counts)
        if kind == "hosts":
            sites = int(keys.size)
    return sites


def count_lines(shards: list[Path], out: Path, partition_mb: float = 128.0, map_fn=None, partitions: int = 0) -> None:
    """The whole map-reduce in one place (`map_fn(fn, jobs, label)` runs jobs in parallel).
    `partitions` > 0 fixes the count (tests); 0 cuts about `partition_mb` of spill per partition."""
    run = map_fn or (lambda fn, jobs, _label: [fn(j) for j in jobs])
    spill = out / "spill"
    spill.mkdir(parents=True, exist_ok=True)
    run(map_shard, [MapJob(s, spill) for s in shards], "count lines per site")
    stems = tuple(s.stem for s in shards)
    bounds = _plan(spill, stems, partition_mb, partitions)
    jobs = [ReduceJob(spill, out, p, (bounds[p], bounds[p + 1]), stems) for p in range(len(bounds) - 1)]
    sites = run(reduce_partition, jobs, "find common lines")
    _join(out, len(jobs))
    (out / META).write_text(json.dumps({"bounds": bounds, "sites": int(sum(sites))}))
    for path in spill.iterdir():
        path.unlink()
    spill.rmdir()


def _plan(spill: Path, stems: tuple[str, ...], partition_mb: float, partitions: int) -> list[int]:
    """Bucket boundaries of the partitions: equal counts of buckets, or ranges of ~partition_mb."""
    if partitions > 0:
        return [round(i * BUCKETS / partitions) for i in range(partitions + 1)]
    sizes = np.zeros(BUCKETS, dtype=np.int64)
    for stem in stems:  # streaming: one small offsets file at a time
        for kind in _KINDS:
            sizes += np.diff(np.load(spill / f"{stem}.{kind}.offsets.npy"))
    budget = max(1, int(partition_mb * 1e6 / ROW_BYTES))
    bounds, filled = [0], 0
    for bucket, rows in enumerate(sizes.tolist()):
        if filled and filled + rows > budget:
            bounds.append(bucket)
            filled = 0
        filled += rows
    bounds.append(BUCKETS)
    return bounds


def _join(out: Path, partitions: int) -> None:
    """Each kind's per-partition tables copied into one keys/counts file with partition starts."""
    for kind in _KINDS:
        parts = [(out / f"{kind}.{p:04d}.keys.npy", out / f"{kind}.{p:04d}.counts.npy") for p in range(partitions)]
        sizes = [int(np.load(k, mmap_mode="r").shape[0]) for k, _ in parts]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(starts[-1])
        keys = np.lib.format.open_memmap(out / f"{kind}.keys.npy", mode="w+", dtype=np.uint64, shape=(total,))
        counts = np.lib.format.open_memmap(out / f"{kind}.counts.npy", mode="w+", dtype=np.uint32, shape=(total,))
        for (k, c), lo, hi in zip(parts, starts[:-1], starts[1:], strict=True):
            keys[lo:hi] = np.load(k, mmap_mode="r")
            counts[lo:hi] = np.load(c, mmap_mode="r")
            k.unlink()
            c.unlink()
        keys.flush()
        counts.flush()
        del keys, counts
        np.save(out / f"{kind}.starts.npy", starts)


class CorpusLineStats(LineStats):
    """Lookups in the tables `count_lines` wrote (memory-mapped)."""

    def __init__(self, folder: Path, mmap: bool = True) -> None:
        meta = json.loads((folder / META).read_text())
        if "bounds" not in meta:
            raise CleaningError(
                f"{folder}: line statistics in the layout of an older version; rerun the run's `cleaning run` "
                "command to count them again (the rules stage is redone; later stages resume where its output "
                "is unchanged)"
            )
        mode = "r" if mmap else None
        self.bounds = np.asarray(meta["bounds"], dtype=np.int64)
        self.sites = max(int(meta["sites"]), 1)
        self._tables = {
            kind: (
                np.load(folder / f"{kind}.keys.npy", mmap_mode=mode),
                np.load(folder / f"{kind}.counts.npy", mmap_mode=mode),
                np.load(folder / f"{kind}.starts.npy"),
            )
            for kind in _KINDS
        }

    def _part(self, hashes: np.ndarray | np.uint64) -> np.ndarray:
        """The partition of a key hash: the range holding its bucket."""
        return np.searchsorted(self.bounds, np.asarray(hashes) % np.uint64(BUCKETS), side="right") - 1

    def _lookup(self, kind: str, part: int, keys: np.ndarray) -> np.ndarray:
        all_keys, all_counts, starts = self._tables[kind]
        table, counts = all_keys[starts[part] : starts[part + 1]], all_counts[starts[part] : starts[part + 1]]
        if table.size == 0 or keys.size == 0:
            return np.zeros(keys.size, dtype=np.float32)
        i = np.minimum(np.searchsorted(table, keys), table.size - 1)
        return np.where(table[i] == keys, counts[i], 0).astype(np.float32)

    def _lookup_spread(self, kind: str, parts: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """`_lookup` for keys of many partitions at once: one binary search per key within its own
        partition's slice of the joined table, all keys a step at a time. A loop over the partitions
        present would cost a pass over the batch per partition, and a terabyte has thousands of them
        (partitions follow the data size)."""
        all_keys, all_counts, starts = self._tables[kind]
        if keys.size == 0 or all_keys.size == 0:
            return np.zeros(keys.size, dtype=np.float32)
        lo, end = starts[parts], starts[parts + 1]
        hi = end.copy()
        for _ in range(int(np.max(hi - lo)).bit_length()):  # bisect_left: first slot whose key >= the key
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) >> 1
            right = active & (all_keys[np.where(active, mid, 0)] < keys)
            lo = np.where(right, mid + 1, lo)
            hi = np.where(active & ~right, mid, hi)
        slot = np.minimum(lo, all_keys.size - 1)
        found = (lo < end) & (all_keys[slot] == keys)
        return np.where(found, all_counts[slot], 0).astype(np.float32)

    def _host_pages(self, hh: np.uint64) -> tuple[int, float]:
        part = int(self._part(hh))
        return part, float(self._lookup("hosts", part, np.array([hh], dtype=np.uint64))[0])

    def lookup(
        self, docs: list[DocLines], hashes: np.ndarray, templates: np.ndarray, has_template: np.ndarray
    ) -> dict[str, np.ndarray]:
        n = hashes.size
        site = np.zeros(n, dtype=np.float32)
        site_pages = np.zeros(n, dtype=np.float32)
        template = np.zeros(n, dtype=np.float32)
        template_pages = np.zeros(n, dtype=np.float32)
        t_idx = np.flatnonzero(has_template)
        t_hash = templates[t_idx]
        t_bounds = np.searchsorted(t_idx, np.cumsum([0] + [len(d.lines) for d in docs]))
        offset = 0
        for k, d in enumerate(docs):
            end = offset + len(d.lines)
            if d.host:
                hh = host_hash(d.host)
                part, pages = self._host_pages(hh)
                site_pages[offset:end] = np.log1p(pages)
                if pages >= 2:
                    counts = self._lookup("site", part, site_keys(hashes[offset:end], hh))
                    site[offset:end] = np.minimum(counts / pages, 1.0)
                    lo, hi = t_bounds[k], t_bounds[k + 1]
                    if hi > lo:
                        found = self._lookup("tmpl", part, site_keys(t_hash[lo:hi], hh))
                        template[t_idx[lo:hi]] = np.minimum(found / pages, 1.0)
                        template_pages[t_idx[lo:hi]] = found
            offset = end
        counts = self._lookup_spread("lines", self._part(hashes).astype(np.int64), hashes)
        return {
            "site_share": site,
            "site_pages": site_pages,
            "host_share": host_share_feature(counts, self.sites),
            "template_share": template,
            "template_pages": template_pages,
        }

    def site_share(
        self, host: str | None, lines: Sequence[str], hashes: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        if not host:
            return np.zeros(len(lines), dtype=np.float32), 0.0
        hh = host_hash(host)
        part, pages = self._host_pages(hh)
        if pages < 2:
            return np.zeros(len(lines), dtype=np.float32), pages
        if hashes is None:
            hashes = line_hashes([s.strip() for s in lines])
        counts = self._lookup("site", part, site_keys(hashes, hh))
        return np.minimum(counts / pages, 1.0).astype(np.float32), pages


def host_share_feature(counts: np.ndarray, sites: int) -> np.ndarray:
    """log10 of the share of sites a line is on, shifted to be positive; 0 for lines on one site.
    A share (not a count) reads the same on a small corpus and on a terabyte."""
    share = np.log10(np.maximum(counts, 1) / max(sites, 1)) + 7
    return np.where(counts >= 2, np.maximum(share, 0.5), 0).astype(np.float32)


def stats_for(rows: list[dict[str, str | None]], partitions: int = 1) -> CorpusLineStats:
    """The same map-reduce over a small in-memory corpus (rows with text and url), in one process:
    for `cleaning rules explain` on a single file, rule examples and training."""
    with tempfile.TemporaryDirectory(prefix="linestats-") as tmp:
        shard = Path(tmp) / "docs.parquet"
        schema = pa.schema([("text", pa.string()), ("url", pa.string())])
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), shard)
        out = Path(tmp) / "stats"
        out.mkdir()
        count_lines([shard], out, partitions=partitions)
        return CorpusLineStats(out, mmap=False)
