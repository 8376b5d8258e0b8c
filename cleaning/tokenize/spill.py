"""Spills: one shard's token ids regrouped so each (group, split) is one contiguous run.

A spill is `NAME.bin` (token ids in the output dtype, documents back to back, sorted by group
and split, repeats expanded), `NAME.lengths.npy` (tokens per document) and `NAME.json` (the
segments, written last: a spill is complete when its .json exists). Output parts are then cut
from spills by byte ranges, so each shard is read once however many groups it feeds.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleaning.readers import BadRecord, ReaderConfig, read_records
from cleaning.shards import ShardWriter, read_json, write_json_atomic
from cleaning.tasks import INPUT_REJECT_SCHEMA
from cleaning.tokenize.split import split_of
from cleaning.tokenize.tokenizer import load_tokenizer

BATCH_DOCS = 1024


@dataclass(frozen=True)
class Segment:
    """Documents of one (group, split) inside a spill: [first_doc, first_doc + docs)."""

    group: str
    split: str
    docs: int
    unique_docs: int  # before repeats
    tokens: int
    first_doc: int
    first_token: int
    unique_tokens: int = 0  # before repeats, EOD included
    chars: int = 0  # of the unique documents: tokens per character by group
    domain: int | None = None  # of the group's documents, for weights by domain

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        return cls(**d)


@dataclass(frozen=True)
class SpillJob:
    """Regroup one output shard of the tokenize stage."""

    shard: Path
    prefix: Path
    key: str
    dtype: str


@dataclass(frozen=True)
class ExtraJob:
    """Tokenize one file of an additional, already-clean corpus straight into a spill."""

    path: Path
    source: str
    group: str
    prefix: Path
    rejects: Path
    key: str
    model: str
    eod: str
    rates: tuple[float, float]  # valid, test shares
    reader: ReaderConfig = field(default_factory=ReaderConfig)


def spill_shard(job: SpillJob) -> list[Segment]:
    """Spill one shard of the stage's output (columns tokens, group, split and, if any, repeat)."""
    done = _done(job.prefix, job.key)
    if done is not None:
        return done
    names = pq.ParquetFile(job.shard).schema_arrow.names
    columns = ["n_chars", "tokens", "group", "split"] + [c for c in ("repeat", "domain") if c in names]
    table = pq.read_table(job.shard, columns=columns)
    chars = table["n_chars"].to_numpy(zero_copy_only=False).astype(np.int64)
    return _spill(table.drop_columns(["n_chars"]), job.prefix, job.key, np.dtype(job.dtype), chars)


def spill_extra(job: ExtraJob) -> dict[str, Any]:
    """Tokenize an extra corpus file into a spill; bad or empty records go to `job.rejects`."""
    done = _done(job.prefix, job.key)
    if done is not None:
        return {"segments": done, **read_json(job.prefix.with_name(job.prefix.name + ".stats.json"))}
    tokenizer = load_tokenizer(job.model, job.eod)
    stats: Counter[str] = Counter()
    tokens: list[np.ndarray] = []
    splits: list[str] = []
    doc_chars: list[int] = []
    bad: list[dict[str, Any]] = []
    batch: list[Any] = []

    def flush() -> None:
        for doc, ids in zip(batch, tokenizer.encode([d.text for d in batch]), strict=True):
            if len(ids) <= 1:
                bad.append(_bad_row(job, doc.id, doc.text, doc.fields.get("line"), "tokenize.empty", "no tokens"))
                continue
            tokens.append(ids)
            doc_chars.append(len(doc.text))
            splits.append(split_of(doc.id, *job.rates))
            stats["text_tokens"] += len(ids) - 1
            stats["chars"] += len(doc.text)
        batch.clear()

    for item in read_records(job.path, job.source, job.reader):
        stats["read"] += 1
        if isinstance(item, BadRecord):
            doc_id = f"{job.source}:{item.line}"
            bad.append(_bad_row(job, doc_id, item.raw, item.line, f"input.{item.reason}", item.detail))
            continue
        batch.append(item)
        if len(batch) >= BATCH_DOCS:
            flush()
    flush()
    stats["tokenized"] = len(tokens)
    stats["rejected"] = len(bad)
    if stats["read"] != stats["tokenized"] + stats["rejected"]:  # pragma: no cover - a bug, not bad input
        raise AssertionError(f"{job.path}: {stats['read']} read != {stats['tokenized']} + {stats['rejected']}")
    if bad:
        writer = ShardWriter(job.rejects, INPUT_REJECT_SCHEMA)
        writer.write(pa.Table.from_pylist(bad, schema=INPUT_REJECT_SCHEMA))
        writer.commit()
    else:
        job.rejects.unlink(missing_ok=True)
    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    chars = np.asarray(doc_chars, np.int64)
    values = np.concatenate(tokens) if tokens else np.empty(0, np.int32)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    table = pa.table(
        {
            "tokens": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
            "group": pa.array([job.group] * len(tokens), pa.string()),
            "split": pa.array(splits, pa.string()),
        }
    )
    info = {key: stats[key] for key in ("read", "tokenized", "rejected", "text_tokens", "chars")}
    write_json_atomic(job.prefix.with_name(job.prefix.name + ".stats.json"), info)
    segments = _spill(table, job.prefix, job.key, tokenizer.dtype, chars)
    return {"segments": segments, **info}


def _bad_row(job: ExtraJob, doc_id: str, text: str, line: Any, reason: str, detail: str) -> dict[str, Any]:
    return {
        "id": doc_id,
        "text": text,
        "source": job.source,
        "line": line,
        "reject_stage": "tokenize",
        "reject_reason": reason,
        "reject_detail": detail,
    }


def _spill(table: pa.Table, prefix: Path, key: str, dtype: np.dtype, chars: np.ndarray) -> list[Segment]:
    """Sort rows by (group, split), expand train repeats, write the spill, return its segments."""
    n = table.num_rows
    order = pc.sort_indices(
        table.append_column("_row", pa.array(np.arange(n))),
        sort_keys=[("group", "ascending"), ("split", "ascending"), ("_row", "ascending")],
    ).to_numpy()
    chars = chars[order]
    groups = np.asarray(table["group"].to_pylist(), dtype=object)[order]
    splits = np.asarray(table["split"].to_pylist(), dtype=object)[order]
    repeat = np.ones(n, np.int64)
    if "repeat" in table.column_names:
        repeat = np.asarray(table["repeat"].fill_null(1).to_numpy(zero_copy_only=False), np.int64)[order]
        repeat[splits != "train"] = 1  # held-out documents are written once
    domains = np.asarray(table["domain"].to_pylist(), object)[order] if "domain" in table.column_names else None
    tokens = table["tokens"].combine_chunks() if n else None
    sorted_lists = tokens.take(pa.array(order)) if n else None
    lengths = pc.list_value_length(sorted_lists).to_numpy(zero_copy_only=False).astype(np.int64) if n else np.empty(0)
    expanded = np.repeat(np.arange(n), repeat)
    out_lengths = lengths[expanded]

    prefix.parent.mkdir(parents=True, exist_ok=True)
    bin_tmp = prefix.with_name(prefix.name + ".bin.tmp")
    with bin_tmp.open("wb") as f:
        if n:
            values = sorted_lists.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)
            starts = np.zeros(n + 1, np.int64)
            np.cumsum(lengths, out=starts[1:])
            if (repeat == 1).all():
                f.write(values.tobytes())
            else:
                for i in range(n):  # repeats are rare (balance weights > 1): copy those documents
                    chunk = values[starts[i] : starts[i + 1]].tobytes()
                    f.write(chunk * int(repeat[i]))
        f.flush()
        os.fsync(f.fileno())
    np.save(prefix.with_name(prefix.name + ".lengths.npy"), out_lengths.astype(np.int32))
    os.replace(bin_tmp, prefix.with_name(prefix.name + ".bin"))

    segments = []
    doc_cursor = token_cursor = 0
    boundaries = [0] + [i for i in range(1, n) if groups[i] != groups[i - 1] or splits[i] != splits[i - 1]] + [n]
    for a, b in itertools.pairwise(boundaries):
        if a == b:
            continue
        docs = int(repeat[a:b].sum())
        toks = int((lengths[a:b] * repeat[a:b]).sum())
        domain = None if domains is None or domains[a] is None else int(domains[a])
        segments.append(
            Segment(
                str(groups[a]),
                str(splits[a]),
                docs,
                b - a,
                toks,
                doc_cursor,
                token_cursor,
                int(lengths[a:b].sum()),
                int(chars[a:b].sum()),
                domain,
            )
        )
        doc_cursor += docs
        token_cursor += toks
    write_json_atomic(prefix.with_name(prefix.name + ".json"), {"key": key, "segments": [s.__dict__ for s in segments]})
    return segments


def _done(prefix: Path, key: str) -> list[Segment] | None:
    """The segments of a finished spill with the same key (resume), else None."""
    marker = prefix.with_name(prefix.name + ".json")
    if not marker.is_file() or not prefix.with_name(prefix.name + ".bin").is_file():
        return None
    data = read_json(marker)
    if data.get("key") != key:
        return None
    return [Segment.from_dict(s) for s in data["segments"]]


def spill_paths(prefix: Path) -> tuple[Path, Path]:
    return prefix.with_name(prefix.name + ".bin"), prefix.with_name(prefix.name + ".lengths.npy")
