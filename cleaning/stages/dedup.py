"""dedup: remove exact and near-duplicate documents corpus-wide (MinHash-LSH), keeping the best copy.

The corpus-wide step (`cleaning.dedup.cluster`) decides which documents go: for each group of
duplicates, the survivor is the lowest P(noise), then the longest, then the smallest id. The
per-shard pass only looks its documents up in that decision, so every removal is in the rejects
with the survivor's id and the estimated Jaccard similarity (`dup_of`, `dup_jaccard`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from cleaning.dedup import cluster, survivors
from cleaning.dedup.minhash import MinHasher, lsh_params
from cleaning.document import Doc, Reject, StageResult
from cleaning.errors import CleaningError
from cleaning.shards import write_json_atomic
from cleaning.stage import PrepareContext, Stage, register

INFO = "dedup.json"


@dataclass
class DedupConfig:
    threshold: float = field(
        default=0.8, metadata={"help": "estimated Jaccard of character shingles to call a pair duplicates"}
    )
    ngram: int = field(default=5, metadata={"help": "characters per shingle (whitespace removed)"})
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations"})
    fp_weight: float = field(default=0.2, metadata={"help": "weight of false positives when choosing bands x rows"})
    fn_weight: float = field(default=0.8, metadata={"help": "weight of false negatives when choosing bands x rows"})
    partitions: int = field(
        default=0, metadata={"help": "key partitions of the shuffle; 0 = from the data size (see partition_mb)"}
    )
    partition_mb: float = field(
        default=256.0,
        metadata={
            "help": "MB of spilled keys per partition when partitions = 0 (reducer memory); also the pairs per "
            "task when duplicate groups are found, and the pairs and documents per survivor group"
        },
    )
    verify: bool = field(
        default=True, metadata={"help": "exact Jaccard on shingles for pairs estimated near the threshold"}
    )
    verify_margin: float = field(
        default=0.1, metadata={"help": "verify pairs whose estimate is within this of the threshold"}
    )
    seed: int = field(default=1, metadata={"help": "MinHash seed (datasketch's meaning)"})
    max_bucket: int = field(
        default=100,
        metadata={"help": "in a larger LSH bucket each document is compared with the next max_bucket - 1 only"},
    )

    keep_pairs: bool = field(
        default=False,
        metadata={
            "help": "also write every pair found at or above the threshold (ids, Jaccard) to the stage's "
            "artifacts, pairs/*.parquet: to audit dedup or measure it (bench/dedup_eval.py)"
        },
    )
    survivor_groups: int = field(
        default=0,
        metadata={
            "help": "groups of duplicate components whose survivors are chosen in parallel; 0 = from the data "
            "size (about partition_mb of pairs and documents per group)"
        },
    )

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise CleaningError("dedup.threshold must be in (0, 1]")
        if min(self.ngram, self.num_perm - 1, self.partitions + 1, self.max_bucket - 1, self.survivor_groups + 1) < 1:
            raise CleaningError(
                "dedup: needs ngram >= 1, num_perm >= 2, partitions >= 0, max_bucket >= 2, survivor_groups >= 0"
            )
        if not self.partition_mb > 0:
            raise CleaningError("dedup.partition_mb must be above 0")


@register
class Dedup(Stage):
    """Corpus-wide exact + MinHash near-duplicate removal; rejects `dedup.exact` / `dedup.near_duplicate`."""

    name = "dedup"
    version = 2  # 2: every pair of a bucket compared; removals only against a similar kept document
    Config = DedupConfig
    columns: ClassVar[dict[str, pa.DataType]] = {"dup_of": pa.string(), "dup_jaccard": pa.float32()}

    def __init__(self, config: DedupConfig, artifacts: Path | None = None) -> None:
        super().__init__(config, artifacts)
        if artifacts is None:
            raise CleaningError("dedup: the corpus-wide step did not run (no artifacts)")
        self.partitions = json.loads((artifacts / INFO).read_text())["removal_partitions"]
        self._loaded: dict[int, dict[tuple[str, int], tuple[str, float, str]]] = {}

    @classmethod
    def prepare(cls, config: DedupConfig, ctx: PrepareContext) -> None:
        """Sign every shard, find duplicate pairs per key partition, resolve components, store removals."""
        started = time.perf_counter()
        # With verification on, buckets are chosen for threshold - margin: a pair at the threshold is
        # then a candidate with P ~0.99 (0.74 with bands for the threshold itself, 12 x 10 at 0.8)
        candidates_at = config.threshold - (config.verify_margin if config.verify else 0.0)
        bands, rows = lsh_params(max(candidates_at, 0.05), config.num_perm, config.fp_weight, config.fn_weight)
        partitions = config.partitions or _partitions_for(ctx.shards, bands, config.partition_mb)
        work = ctx.workdir / "work"
        for sub in (cluster.DOCS, cluster.SIGS, cluster.KEYS, cluster.EDGES, cluster.SHINGLES):
            (work / sub).mkdir(parents=True)
        hasher = MinHasher(config.num_perm, config.ngram, config.seed)
        try:
            jobs = [
                cluster.MapJob(s, i, work, hasher, bands, rows, partitions, config.verify)
                for i, s in enumerate(ctx.shards)
            ]
            ctx.log(f"signing {len(jobs)} shards ({bands} bands x {rows} rows, threshold {config.threshold})")
            mapped = ctx.map(cluster.map_shard, jobs, "sign shards")
            margin = config.verify_margin if config.verify else None
            layout = (len(jobs), bands, rows, partitions)
            reduce_jobs = [
                cluster.ReduceJob(work, p, *layout, config.threshold, margin, config.max_bucket)
                for p in range(partitions)
            ]
            reduced = ctx.map(cluster.reduce_partition, reduce_jobs, "find duplicate pairs")
            if config.keep_pairs:
                pair_jobs = [cluster.PairsJob(work, p, ctx.workdir) for p in range(partitions)]
                ctx.map(cluster.write_pairs, pair_jobs, "write the pairs found")
            removal_parts = max(8, len(ctx.shards))
            pairs = sum(r["exact_pairs"] + r["kept"] for r in reduced)
            resolved = survivors.survivors(
                ctx.map, work, ctx.workdir, partitions, pairs, len(jobs), config.threshold, config.verify,
                removal_parts, config.survivor_groups, config.partition_mb,
            )  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)
        stats = {
            "bands": bands,
            "rows": rows,
            "threshold": config.threshold,
            "documents": sum(m["docs"] for m in mapped),
            "signed": sum(m["signed"] for m in mapped),
            "candidate_pairs": sum(r["candidates"] for r in reduced),
            "pairs_kept": sum(r["kept"] for r in reduced),
            "exact_pairs": sum(r["exact_pairs"] for r in reduced),
            "pairs_verified": sum(r["verified"] for r in reduced),
            "giant_buckets": sum(r["giant_buckets"] for r in reduced),
            "giant_bucket_max": max((r["giant_bucket_max"] for r in reduced), default=0),
            "pairs_not_compared": sum(r["pairs_not_compared"] for r in reduced),
            "seconds": round(time.perf_counter() - started, 2),
            "removal_partitions": removal_parts,
            "partitions": partitions,
            **resolved,
        }
        ctx.log(f"{stats['removed_exact']:,} exact and {stats['removed_near']:,} near duplicates to remove")
        write_json_atomic(ctx.workdir / INFO, stats)

    def process(self, docs: list[Doc]) -> StageResult:
        result = StageResult()
        for doc in docs:
            source, line = doc.fields.get("source") or "", int(doc.fields.get("line") or 0)
            hit = self._removals(cluster.removal_partition(source, self.partitions)).get((source, line))
            if hit is None:
                doc.fields.update(dup_of=None, dup_jaccard=None)
                result.kept.append(doc)
                continue
            kept_id, jaccard, reason = hit
            doc.fields.update(dup_of=kept_id, dup_jaccard=jaccard)
            result.rejected.append(Reject(doc, reason, f"duplicate of {kept_id} (Jaccard ~{jaccard:.2f})"))
        return result

    def _removals(self, part: int) -> dict[tuple[str, int], tuple[str, float, str]]:
        """One partition of the removal table, loaded when first needed (two kept per worker)."""
        if part not in self._loaded:
            if len(self._loaded) >= 2:
                self._loaded.pop(next(iter(self._loaded)))
            assert self.artifacts is not None
            path = self.artifacts / cluster.REMOVALS / f"{part:05d}.parquet"
            table = pq.read_table(path).to_pylist() if path.is_file() else []
            self._loaded[part] = {(r["source"], r["line"]): (r["kept_id"], r["jaccard"], r["reason"]) for r in table}
        return self._loaded[part]


def _partitions_for(shards: list[Path], bands: int, partition_mb: float) -> int:
    """Enough partitions that each reducer holds about `partition_mb` of keys (a band key per band
    and an exact key per document, 24 bytes each): the count follows the data, not the shard count."""
    docs = sum(pq.ParquetFile(s).metadata.num_rows for s in shards)
    return max(8, math.ceil(docs * (bands + 1) * 24 / (partition_mb * 1e6)))
