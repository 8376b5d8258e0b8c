"""Cut output parts from spills: `tokens/<group>/part-NNNNN.{bin,idx,json}`, each at most `part_tokens`.

Planning happens on the driver from the spills' segments (small); writing happens per part in
workers, copying token ranges out of the spills by memory map, so memory stays bounded by a
chunk whatever the part size. A part is finished when its `.idx` and its `.json` (the shard's
metadata: tokenizer hash, counts, key) both exist with the planned key; reruns skip it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.shards import read_json, write_json_atomic
from cleaning.tokenize.indexed import IndexedWriter
from cleaning.tokenize.spill import Segment, spill_paths

CHUNK_TOKENS = 1 << 24  # copied per step: 32 MB of uint16


@dataclass(frozen=True)
class Piece:
    """A run of documents of one spill: [first_doc, first_doc + docs)."""

    spill: str
    first_doc: int
    docs: int
    first_token: int
    tokens: int


@dataclass(frozen=True)
class PartJob:
    prefix: Path
    group: str  # the train group, or "valid"/"test" for the held-out parts of every group
    split: str
    dtype: str
    pieces: tuple[Piece, ...]
    meta: dict[str, Any]  # written into the part's .json (tokenizer, source run)

    @property
    def key(self) -> str:
        pieces = [asdict(p) for p in self.pieces]
        payload = json.dumps([str(self.prefix), self.dtype, pieces, self.meta], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.pieces)


def plan_parts(
    spills: list[tuple[Path, list[Segment]]], products: Path, part_tokens: int, dtype: str, meta: dict[str, Any]
) -> list[PartJob]:
    """Parts for every train group (own folder) and for valid and test (one folder each).

    Parts end at document boundaries; a document longer than a part gets a part of its own."""
    streams: dict[tuple[str, str], list[tuple[Path, Segment]]] = {}
    for prefix, segments in spills:
        for seg in segments:
            folder = seg.group if seg.split == "train" else seg.split
            streams.setdefault((folder, seg.split), []).append((prefix, seg))
    jobs: list[PartJob] = []
    for (folder, split), items in sorted(streams.items()):
        items.sort(key=lambda item: item[1].group)  # stable: spill order within a group
        for index, pieces in enumerate(_cut(items, part_tokens)):
            jobs.append(PartJob(products / folder / f"part-{index:05d}", folder, split, dtype, tuple(pieces), meta))
    return jobs


def _cut(items: list[tuple[Path, Segment]], part_tokens: int) -> list[list[Piece]]:
    """Split a stream of segments into parts of at most `part_tokens`, at document boundaries."""
    parts: list[list[Piece]] = []
    pieces: list[Piece] = []
    room = part_tokens
    for prefix, seg in items:
        doc, token, docs_left = seg.first_doc, seg.first_token, seg.docs
        while docs_left:
            left = seg.first_token + seg.tokens - token
            if left <= room:
                take, taken = docs_left, left
            else:
                lengths = np.load(spill_paths(prefix)[1], mmap_mode="r")[doc : doc + docs_left]
                ends = np.cumsum(lengths, dtype=np.int64)
                take = int(np.searchsorted(ends, room, side="right")) or (0 if pieces else 1)
                taken = int(ends[take - 1]) if take else 0
            if take:
                pieces.append(Piece(str(prefix), doc, take, token, taken))
                doc, token, docs_left, room = doc + take, token + taken, docs_left - take, room - taken
            if docs_left:  # the part is full
                parts.append(pieces)
                pieces, room = [], part_tokens
    if pieces:
        parts.append(pieces)
    return parts


def write_part(job: PartJob) -> dict[str, Any]:
    """Write one part (skipped when already written with the same key); returns its manifest entry."""
    sidecar = job.prefix.with_name(job.prefix.name + ".json")
    key = job.key
    if Path(f"{job.prefix}.idx").is_file() and sidecar.is_file() and read_json(sidecar).get("key") == key:
        return read_json(sidecar)
    sidecar.unlink(missing_ok=True)
    with IndexedWriter(job.prefix, np.dtype(job.dtype)) as writer:
        for piece in job.pieces:
            bin_path, lengths_path = spill_paths(Path(piece.spill))
            data = np.memmap(bin_path, dtype=job.dtype, mode="r")
            lengths = np.load(lengths_path, mmap_mode="r")[piece.first_doc : piece.first_doc + piece.docs]
            ends = np.cumsum(lengths, dtype=np.int64)
            doc = 0
            while doc < piece.docs:  # chunks of whole documents, about CHUNK_TOKENS each
                base = int(ends[doc - 1]) if doc else 0
                stop = max(doc + 1, int(np.searchsorted(ends, base + CHUNK_TOKENS, side="right")))
                start = piece.first_token + base
                writer.add_many(data[start : piece.first_token + int(ends[stop - 1])], np.asarray(lengths[doc:stop]))
                doc = stop
            del data
    entry = {
        "key": key,
        "path": f"{job.prefix.parent.name}/{job.prefix.name}",
        "group": job.group,
        "split": job.split,
        "documents": sum(p.docs for p in job.pieces),
        "tokens": job.tokens,
        "dtype": job.dtype,
        "bin_bytes": Path(f"{job.prefix}.bin").stat().st_size,
        **job.meta,
    }
    write_json_atomic(sidecar, entry)
    return entry
