"""Which duplicates go, decided in parallel groups of components with memory bounded per group.

  components (rounds of tasks): `components.find` labels every document in a pair with its
                          component (named by its smallest document number) by large-star and
                          small-star rounds over the pairs split by node: a task holds one
                          partition of the pairs, never the whole graph; components are dealt
                          into `groups` by that name
  route (per partition and per shard): pairs and document attributes sorted by group, with the
                          offsets (pairs) or row groups (documents) of each group
  resolve (per group):    the survivor rule of `cluster.resolve_edges` over the group's components.
                          The rule never looks across a component, so any split into groups gives
                          the same survivors as one pass over everything
  write (per removal part): the removals of every group for the part, sorted by source and line

Memory: a components task holds its partition of the pairs (`budget_mb`); a group task holds its
share of the pairs and documents (`groups` follows the data size), or one component larger than that.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cleaning.dedup import cluster, components, owned

GROUPED = "grouped"
# a group task's memory per document and per pair (measured: 128,829 documents in one group at 1.2 GB
# of bench corpus took 150 MB over the process's baseline, with the shingle-set cache)
NODE_BYTES = 1200
EDGE_BYTES = 48


class Components:
    """The group of any document in a pair, from the labels `components.find` wrote."""

    def __init__(self, work: Path, parts: int, groups: int) -> None:
        self.labels = components.Labels(work, parts)
        self.groups = groups

    def locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whether each key is in a pair, the group of its component; 0 for keys in no pair)."""
        member, component = self.labels.lookup(keys)
        return member, owned.owner_of(component, self.groups)


@dataclass(frozen=True)
class RouteJob:
    work: Path
    parts: int  # partitions of the component labels
    groups: int
    partition: int = -1  # an edge partition to route, or
    shard: int = -1  # a shard's document table to route


def route(job: RouteJob) -> int:
    """Sort one edge partition's pairs, or one shard's documents that are in a pair, by group."""
    comps = Components(job.work, job.parts, job.groups)
    folder = job.work / GROUPED
    folder.mkdir(exist_ok=True)
    if job.partition >= 0:
        with np.load(job.work / cluster.EDGES / f"{job.partition:05d}.npz") as e:
            u, v, jaccard = e["u"], e["v"], e["jaccard"]
        stem = folder / f"edges-{job.partition:05d}"
        owned.save(stem, comps.locate(u)[1], job.groups, {"u": u, "v": v, "jaccard": jaccard})
        return len(u)
    table = pq.read_table(job.work / cluster.DOCS / f"{job.shard:06d}.parquet")
    member, group = comps.locate(table["key"].to_numpy())  # one lookup: membership and group together
    _write_by(folder / f"docs-{job.shard:06d}", table.filter(pa.array(member)), group[member], job.groups)
    return table.num_rows


def _write_by(stem: Path, table: pa.Table, owner: np.ndarray, owners: int) -> None:
    """The rows as one Parquet row group per owner (`stem`.parquet), and which row group each owner
    has, -1 for none (`stem`.rowgroups.npy): a reader loads only its own rows."""
    order = np.argsort(owner, kind="stable")
    table, owner = table.take(pa.array(order)), owner[order]
    starts = np.searchsorted(owner, np.arange(owners + 1))
    present = np.flatnonzero(np.diff(starts))
    with pq.ParquetWriter(f"{stem}.parquet", table.schema) as writer:
        for i in present.tolist():
            writer.write_table(table.slice(starts[i], starts[i + 1] - starts[i]), row_group_size=1 << 40)
    row_group = np.full(owners, -1, dtype=np.int64)
    row_group[present] = np.arange(len(present))
    np.save(f"{stem}.rowgroups.npy", row_group)


def _read_own(stem: Path, owner: int) -> pa.Table | None:
    if not Path(f"{stem}.rowgroups.npy").is_file():
        return None
    index = int(np.load(f"{stem}.rowgroups.npy", mmap_mode="r")[owner])
    return pq.ParquetFile(f"{stem}.parquet").read_row_group(index) if index >= 0 else None


@dataclass(frozen=True)
class GroupJob:
    work: Path
    group: int
    partitions: int
    shards: int
    threshold: float
    exact_jaccard: bool
    removal_parts: int


def resolve_group(job: GroupJob) -> dict[str, Any]:
    """The survivors of one group's components; its removals are written by removal part."""
    folder = job.work / GROUPED
    edges = owned.load((folder / f"edges-{p:05d}" for p in range(job.partitions)), job.group, ["u", "v", "jaccard"])
    u, v, jaccard = edges["u"], edges["v"], edges["jaccard"]
    tables = [t for s in range(job.shards) if (t := _read_own(folder / f"docs-{s:06d}", job.group)) is not None]
    info = pa.concat_tables(tables) if tables else None
    if info is not None:
        info = info.take(pa.array(np.argsort(info["key"].to_numpy())))
    result = cluster.resolve_edges(job.work, u, v, jaccard, info, job.threshold, job.exact_jaccard)
    removed = result.removed
    owner = np.array([cluster.removal_partition(s, job.removal_parts) for s in removed["source"].to_pylist()], np.int64)
    _write_by(folder / f"removals-{job.group:05d}", removed, owner, job.removal_parts)
    return result.stats


@dataclass(frozen=True)
class WriteJob:
    work: Path
    parts: tuple[int, int]  # a range of removal parts
    groups: int
    out: Path  # the stage's artifacts folder: removals/ goes there


def write_parts(job: WriteJob) -> int:
    """Removal parts from every group's removals, each sorted by source and line. Each group's index
    is read once per job and its file opened only if it holds rows of these parts."""
    folder = job.work / GROUPED
    lo, hi = job.parts
    index = [np.load(folder / f"removals-{g:05d}.rowgroups.npy")[lo:hi] for g in range(job.groups)]
    files = {g: pq.ParquetFile(folder / f"removals-{g:05d}.parquet") for g in range(job.groups) if index[g].max() >= 0}
    written = 0
    for part in range(lo, hi):
        tables = [f.read_row_group(int(index[g][part - lo])) for g, f in files.items() if index[g][part - lo] >= 0]
        if tables:
            table = pa.concat_tables(tables).sort_by([("source", "ascending"), ("line", "ascending")])
            pq.write_table(table.combine_chunks(), job.out / cluster.REMOVALS / f"{part:05d}.parquet")
            written += table.num_rows
    return written


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The groups' counts as one: component sizes and hosts summed (hosts ordered by count, then name)."""
    sizes: Counter[str] = Counter()
    hosts: Counter[str] = Counter()
    out = {"removed_exact": 0, "removed_near": 0, "kept_below_threshold": 0}
    for stats in parts:
        sizes.update(stats["components"])
        hosts.update(dict(stats["hosts"]))
        for key in out:
            out[key] += stats.get(key, 0)
    return {
        "components": {k: sizes[k] for k in sorted(sizes, key=int)},
        **out,
        "hosts": sorted(hosts.items(), key=lambda kv: (-kv[1], kv[0]))[:20],
    }


def survivors(ctx_map: Any, work: Path, out: Path, partitions: int, pairs: int, shards: int, threshold: float,
              exact_jaccard: bool, removal_parts: int, groups: int, budget_mb: float) -> dict[str, Any]:  # fmt: skip
    """The whole step: components, routing, groups resolved in parallel, removal parts written.
    `pairs`: how many pairs the reduce partitions kept; `shards`: how many shards were signed."""
    found = components.find(ctx_map, work, partitions, pairs, budget_mb)
    g = groups or max(1, math.ceil((found["nodes"] * NODE_BYTES + pairs * EDGE_BYTES) / (budget_mb * 1e6)))
    parts = found["parts"]
    route_jobs = [RouteJob(work, parts, g, partition=p) for p in range(partitions)]
    route_jobs += [RouteJob(work, parts, g, shard=s) for s in range(shards)]
    ctx_map(route, route_jobs, "route duplicate groups")
    jobs = [GroupJob(work, i, partitions, shards, threshold, exact_jaccard, removal_parts) for i in range(g)]
    stats = merge_stats(ctx_map(resolve_group, jobs, "choose survivors"))
    (out / cluster.REMOVALS).mkdir()
    writers = min(removal_parts, max(8, g))  # each reads every group's small index once
    bounds = [round(i * removal_parts / writers) for i in range(writers + 1)]
    write_jobs = [WriteJob(work, (bounds[i], bounds[i + 1]), g, out) for i in range(writers)]
    ctx_map(write_parts, write_jobs, "write removals")
    return {**stats, "documents_in_pairs": found["nodes"], "survivor_groups": g, "component_rounds": found["rounds"]}
