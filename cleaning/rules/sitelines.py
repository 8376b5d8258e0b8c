"""Site-level boilerplate: lines that recur on many pages of the same host.

A corpus-wide map-reduce in the rules stage's `prepare` step, with memory bounded by partition:
  map    (per shard):     unique (host, line) keys of every page, spilled into P partition files by host
  reduce (per partition): pages per key and per host; keep keys on >= min_pages pages and >= min_share
                          of the host's pages
The result is one sorted array of 64-bit keys (`site_lines.npy`) that every worker loads once.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from cleaning.rules.engine import site_key

PAGE = np.uint64(0)  # key of the per-page marker row, counting pages per host
RESULT = "site_lines.npy"


def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


@dataclass(frozen=True)
class MapJob:
    shard: Path
    spill: Path
    partitions: int


@dataclass(frozen=True)
class ReduceJob:
    spill: Path
    partition: int
    min_pages: int
    min_share: float


def map_shard(job: MapJob) -> int:
    """Spill the unique (host, line) keys of every page of one shard; returns pages counted."""
    table = pq.read_table(job.shard, columns=["text", "url"])
    hosts: list[int] = []
    keys: list[int] = []
    seen_pages: set[int] = set()
    for text, url in zip(table["text"].to_pylist(), table["url"].to_pylist(), strict=True):
        host = host_of(url)
        page = xxhash.xxh3_64_intdigest(f"{host}\n{text}".encode())
        if host is None or page in seen_pages:
            continue  # a page crawled twice must not make its own lines look like boilerplate
        seen_pages.add(page)
        host_hash = xxhash.xxh3_64_intdigest(host.encode())
        page_keys = {site_key(host, line.strip()) for line in text.split("\n") if line.strip()}
        hosts.extend([host_hash] * (len(page_keys) + 1))
        keys.append(int(PAGE))
        keys.extend(page_keys)
    host_arr = np.array(hosts, dtype=np.uint64)
    key_arr = np.array(keys, dtype=np.uint64)
    part = host_arr % np.uint64(job.partitions)
    for p in range(job.partitions):
        sel = part == p
        np.save(job.spill / f"{job.shard.stem}.p{p:04d}.hosts.npy", host_arr[sel])
        np.save(job.spill / f"{job.shard.stem}.p{p:04d}.keys.npy", key_arr[sel])
    return len(seen_pages)


def reduce_partition(job: ReduceJob) -> np.ndarray:
    """Keys of lines seen on enough pages of their host, for hosts of one partition."""
    tag = f".p{job.partition:04d}."
    host_files = sorted(p for p in job.spill.glob(f"*{tag}hosts.npy"))
    if not host_files:
        return np.empty(0, dtype=np.uint64)
    hosts = np.concatenate([np.load(p) for p in host_files])
    keys = np.concatenate([np.load(p.with_name(p.name.replace(".hosts.", ".keys."))) for p in host_files])
    is_page = keys == PAGE
    page_hosts, page_counts = np.unique(hosts[is_page], return_counts=True)
    line_keys, first, counts = np.unique(keys[~is_page], return_index=True, return_counts=True)
    line_hosts = hosts[~is_page][first]
    host_pages = page_counts[np.searchsorted(page_hosts, line_hosts)]
    keep = (counts >= job.min_pages) & (counts >= job.min_share * host_pages)
    return line_keys[keep]


def repeated_lines_in(rows: list[dict[str, str | None]], min_pages: int, min_share: float) -> np.ndarray:
    """The same map-reduce over a small in-memory corpus (rows with text and url), in one process:
    for `cleaning rules explain` on a single file and for the rule examples."""
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "docs.parquet"
        pq.write_table(
            pa.Table.from_pylist(rows, schema=pa.schema([("text", pa.string()), ("url", pa.string())])), shard
        )
        map_shard(MapJob(shard, Path(tmp), 1))
        return np.sort(reduce_partition(ReduceJob(Path(tmp), 0, min_pages, min_share)))
