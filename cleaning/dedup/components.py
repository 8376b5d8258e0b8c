"""Connected components of the duplicate pairs, with memory per task bounded by configuration.

A union-find over every document in a pair needs them all in one process. Instead the pairs are
split by node into `parts` partitions, each pair stored in both directions so that a partition
holds every neighbour of its nodes, and rounds of large-star and small-star (Kiveris et al.,
"Connected Components in MapReduce and Beyond", 2014) rewrite the graph until it is a forest of
stars, each centred on its component's smallest document:

  large-star at u: m = min(u and its neighbours); every neighbour v > u is joined to m instead
  small-star at u: m = min(u and its neighbours <= u); those neighbours and u are joined to m

Both keep the components and shrink the distance to each one's smallest node; they alternate until
no node other than a centre has more than one neighbour (about log n rounds, each reading and writing
every pair once). A task holds one partition's pairs; files per round are one per partition.

Layout under WORK/components/: `r{round}/{task}.{a,b,offsets}.npy` hold the pairs a task wrote,
grouped by the partition that owns their first node (a reader maps them and reads its slice);
`labels/{part}.nodes.npy` holds the nodes of a partition, sorted, and `labels/{part}.component.npy`
the component of each (its smallest document). Each round's folder is deleted once the next round
has read it.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.dedup import cluster, owned
from cleaning.errors import CleaningError

FOLDER = "components"
LABELS = "labels"
# a task's peak per pair it holds (one direction), over the process's baseline: measured 80 bytes
# on 1.7e6 pairs per task of groups of near copies, 145 on 4e6 per task of a random graph
PAIR_BYTES = 128
# alternating large-star and small-star converges in O(log^2 n) rounds (Kiveris et al.): far fewer
# than this for any corpus; reaching it means a fault, reported rather than looped on
MAX_ROUNDS = 2000
part_of = owned.owner_of  # the partition that owns each node


def _write(stem: Path, a: np.ndarray, b: np.ndarray, parts: int) -> None:
    """Pairs (a, b) grouped by the partition that owns a."""
    owned.save(stem, part_of(a, parts), parts, {"a": a, "b": b})


def _read(folder: Path, sources: int, part: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs every source task wrote for this partition, without duplicates, sorted by (a, b)."""
    pairs = owned.load((folder / f"{s:05d}" for s in range(sources)), part, ["a", "b"])
    a, b = pairs["a"], pairs["b"]
    del pairs
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[first], b[first]


@dataclass(frozen=True)
class SeedJob:
    work: Path
    partition: int  # a reduce partition of kept pairs: EDGES/{p}.npz
    parts: int


def seed(job: SeedJob) -> int:
    """Round 0: one reduce partition's pairs in both directions, grouped by owning partition."""
    with np.load(job.work / cluster.EDGES / f"{job.partition:05d}.npz") as e:
        u, v = e["u"], e["v"]
    keep = u != v
    u, v = u[keep], v[keep]
    folder = job.work / FOLDER / "r00000"
    _write(folder / f"{job.partition:05d}", np.concatenate([u, v]), np.concatenate([v, u]), job.parts)
    return len(u)


@dataclass(frozen=True)
class StarJob:
    work: Path
    part: int
    parts: int
    round: int  # reads r{round}, writes r{round + 1}
    sources: int  # files in r{round}
    large: bool  # large-star, else small-star


def star(job: StarJob) -> dict[str, int]:
    """One partition's step of a round. Returns the pairs read and `open`: nodes that are neither a
    centre nor a leaf (0 in every partition = the graph is a forest of stars, the labels are final).
    The labels of the pairs read are written every round; the driver keeps the last ones."""
    root = job.work / FOLDER
    a, b = _read(root / f"r{job.round:05d}", job.sources, job.part)  # sorted by (a, b)
    starts = np.flatnonzero(np.concatenate([[True], a[1:] != a[:-1]])) if len(a) else np.empty(0, np.int64)
    nodes, degree = a[starts], np.diff(np.append(starts, len(a)))
    lowest = np.minimum(b[starts], nodes)  # a node's first neighbour is its smallest
    np.save(root / LABELS / f"{job.part:05d}.nodes.npy", nodes)
    np.save(root / LABELS / f"{job.part:05d}.component.npy", lowest)
    open_nodes = int(np.count_nonzero((lowest < nodes) & (degree > 1)))
    m = np.repeat(lowest, degree)  # per pair: the smallest of a and its neighbours
    if job.large:  # every bigger neighbour joins it
        pick = b > a
        new_a, new_b = b[pick], m[pick]
    else:  # every smaller neighbour and a itself join it (the smallest of a and its smaller neighbours)
        pick = b <= a
        new_a, new_b = np.concatenate([b[pick], nodes]), np.concatenate([m[pick], lowest])
    del a, b, m, pick
    keep = new_a != new_b
    new_a, new_b = new_a[keep], new_b[keep]
    out = root / f"r{job.round + 1:05d}"
    _write(out / f"{job.part:05d}", np.concatenate([new_a, new_b]), np.concatenate([new_b, new_a]), job.parts)
    return {"pairs": int(degree.sum()), "open": open_nodes, "nodes": len(nodes)}


def parts_for(edges: int, budget_mb: float) -> int:
    """Partitions so that one holds about `budget_mb` of pairs in both directions."""
    return max(1, math.ceil(2 * edges * PAIR_BYTES / (budget_mb * 1e6)))


def find(
    ctx_map: Callable, work: Path, partitions: int, edges: int, budget_mb: float, parts: int = 0
) -> dict[str, Any]:
    """Label every document in a pair with its component; returns the counts and rounds run.
    `partitions`: the reduce partitions of kept pairs; `edges`: how many pairs they hold."""
    parts = parts or parts_for(edges, budget_mb)
    root = work / FOLDER
    shutil.rmtree(root, ignore_errors=True)
    (root / "r00000").mkdir(parents=True)
    (root / LABELS).mkdir()
    ctx_map(seed, [SeedJob(work, p, parts) for p in range(partitions)], "find duplicate groups: seed")
    sources, rnd, large = partitions, 0, True
    while rnd < MAX_ROUNDS:
        (root / f"r{rnd + 1:05d}").mkdir()
        jobs = [StarJob(work, p, parts, rnd, sources, large) for p in range(parts)]
        done = ctx_map(star, jobs, f"find duplicate groups: round {rnd + 1}")
        shutil.rmtree(root / f"r{rnd:05d}")
        if sum(d["open"] for d in done) == 0:  # this round read a forest of stars: its labels are final
            shutil.rmtree(root / f"r{rnd + 1:05d}")
            return {"nodes": sum(d["nodes"] for d in done), "parts": parts, "rounds": rnd + 1}
        sources, rnd, large = parts, rnd + 1, not large
    raise CleaningError(f"dedup: duplicate groups not settled after {MAX_ROUNDS} rounds of star contraction")


class Labels:
    """The component of any document in a pair, read partition by partition (memory-mapped)."""

    def __init__(self, work: Path, parts: int) -> None:
        self.folder = work / FOLDER / LABELS
        self.parts = parts

    def _load(self, part: int) -> tuple[np.ndarray, np.ndarray]:
        """Memory-mapped: a lookup reads the pages its binary searches touch, and the workers of a
        machine share them."""
        stem = self.folder / f"{part:05d}"
        return np.load(f"{stem}.nodes.npy", mmap_mode="r"), np.load(f"{stem}.component.npy", mmap_mode="r")

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whether each key is in a pair, its component or 0)."""
        keys = np.asarray(keys, dtype=np.uint64)
        member = np.zeros(len(keys), dtype=bool)
        component = np.zeros(len(keys), dtype=np.uint64)
        owner = part_of(keys, self.parts)
        order = np.lexsort((keys, owner))  # by partition, then key: the searches walk forwards
        bounds = np.searchsorted(owner[order], np.arange(self.parts + 1))
        for part in np.flatnonzero(np.diff(bounds)).tolist():
            rows = order[bounds[part] : bounds[part + 1]]
            nodes, comp = self._load(part)
            if not len(nodes):
                continue
            at = np.minimum(np.searchsorted(nodes, keys[rows]), len(nodes) - 1)
            hit = np.asarray(nodes[at]) == keys[rows]
            member[rows] = hit
            component[rows[hit]] = np.asarray(comp[at[hit]])
        return member, component
