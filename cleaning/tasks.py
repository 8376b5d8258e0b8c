"""The two units of parallel work: ingest one input file, and run one stage over one shard.

Both run inside a worker (a Ray actor, or the driver with --no-ray), write their outputs
atomically, and finish by writing a done marker; the marker is what lets a rerun skip them.
"""

from __future__ import annotations

import importlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleaning.document import BASE_SCHEMA, Doc, docs_from_table, docs_to_table, reject_schema, rejects_to_table
from cleaning.errors import CleaningError, ConservationError
from cleaning.memory import peak_rss_mb, reset_peak
from cleaning.readers import BadRecord, ReaderConfig, read_records
from cleaning.remote import InputFile
from cleaning.runstore import RunStore
from cleaning.shards import ShardWriter, write_json_atomic
from cleaning.stage import STAGES, Stage

INPUT_STAGE = "_input"
INPUT_REJECT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),  # the offending record as read (undecodable bytes as \xNN)
        ("source", pa.string()),
        ("line", pa.int64()),
        ("reject_stage", pa.string()),
        ("reject_reason", pa.string()),
        ("reject_detail", pa.string()),
    ]
)
MAX_WARNINGS = 20  # per input file; the rest are counted, and all are in the rejects file


def load_stage_class(ref: str) -> type[Stage]:
    """A built-in stage by name, or any Stage subclass as `package.module:Class`."""
    import cleaning.stages  # noqa: F401  (registers built-ins)

    if ref in STAGES:
        return STAGES[ref]
    if ":" in ref:
        module, _, attr = ref.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise CleaningError(f"cannot load stage class {ref!r}: {exc}") from exc
        if isinstance(cls, type) and issubclass(cls, Stage):
            return cls
        raise CleaningError(f"{ref!r} is not a cleaning.stage.Stage subclass")
    raise CleaningError(f"unknown stage {ref!r}; built-in stages: {', '.join(sorted(STAGES))}")


@dataclass
class IngestTask:
    """Read input files into shards of at most `shard_bytes` of text each. One large file, or a
    group of small ones: small files share shards, so the shard count follows the data size."""

    files: list[tuple[InputFile, str]]  # (local path or object in a store, source name)
    prefix: str
    shards_dir: Path
    rejects_path: Path
    done_path: Path
    key: str
    reader: ReaderConfig
    shard_bytes: int
    batch_docs: int
    store: RunStore | None = None  # the run's output in object storage: what the task writes is published

    @property
    def label(self) -> str:
        first = self.files[0][1]
        return first if len(self.files) == 1 else f"{first} (+{len(self.files) - 1:,} files)"

    def run(self, cache: dict[str, Any]) -> dict[str, Any]:
        if self.store is not None and self.store.here() != self.store:
            return on_this_node(self).run(cache)
        start = time.perf_counter()
        reset_peak()
        outputs: list[dict[str, Any]] = []
        bad = []
        warnings: list[str] = []
        warned = 0
        stats = ShardStats()
        writer: ShardWriter | None = None
        buffer: list[Doc] = []
        shard_bytes = 0

        def flush() -> None:
            nonlocal writer
            if buffer:
                if writer is None:
                    writer = ShardWriter(self.shards_dir / f"{self.prefix}-{len(outputs):05d}.parquet", BASE_SCHEMA)
                writer.write(docs_to_table(buffer, BASE_SCHEMA))
                buffer.clear()

        try:
            for item, source in _records(self.files, self.reader):
                stats.docs_in += 1
                if isinstance(item, BadRecord):
                    bad.append((source, item))
                    stats.rejected[f"input.{item.reason}"] += 1
                    if item.warn:
                        warned += 1
                        if len(warnings) < MAX_WARNINGS:
                            warnings.append(f"{source}:{item.line}: {item.reason}: {item.detail}")
                    continue
                size = len(item.text.encode("utf-8", "surrogatepass"))
                stats.kept += 1
                stats.chars_out += len(item.text)
                stats.bytes_in += size
                buffer.append(item)
                shard_bytes += size
                if len(buffer) >= self.batch_docs:
                    flush()
                if shard_bytes >= self.shard_bytes:
                    flush()
                    outputs.append(writer.commit())  # type: ignore[union-attr]
                    writer, shard_bytes = None, 0
            flush()
            if writer is not None:
                outputs.append(writer.commit())
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        rejects = _write_input_rejects(bad, self.rejects_path)
        stats.chars_in = stats.chars_out
        stats.seconds = time.perf_counter() - start
        stats.peak_rss_mb = peak_rss_mb()
        hidden = warned - len(warnings)
        if hidden > 0:
            warnings.append(f"{self.label}: {hidden} more bad records (all in {self.rejects_path.name})")
        marker = {
            "key": self.key,
            "outputs": outputs,
            "rejects": rejects,
            "stats": stats.to_dict(),
            "warnings": warnings,
        }
        write_json_atomic(self.done_path, marker)
        if self.store is not None:
            written = [self.shards_dir / o["path"] for o in outputs]
            self.store.push([*written, *([self.rejects_path] if rejects else []), self.done_path])
        return marker


def _records(files: list[tuple[InputFile, str]], reader: ReaderConfig) -> Iterator[tuple[Doc | BadRecord, str]]:
    for path, source in files:
        for item in read_records(path, source, reader):
            yield item, source


def _write_input_rejects(bad: list[tuple[str, BadRecord]], path: Path) -> dict[str, Any] | None:
    if not bad:
        path.unlink(missing_ok=True)
        return None
    rows = [
        {
            "id": f"{source}:{b.line}",
            "text": b.raw,
            "source": source,
            "line": b.line,
            "reject_stage": INPUT_STAGE,
            "reject_reason": f"input.{b.reason}",
            "reject_detail": b.detail,
        }
        for source, b in bad
    ]
    writer = ShardWriter(path, INPUT_REJECT_SCHEMA)
    writer.write(pa.Table.from_pylist(rows, schema=INPUT_REJECT_SCHEMA))
    return writer.commit()


@dataclass
class StageTask:
    """Run one stage over one shard, batch by batch, checking conservation on every batch."""

    stage_ref: str
    config: Any
    artifacts: Path | None
    in_path: Path
    out_path: Path
    rejects_path: Path
    done_path: Path
    key: str
    instance_key: str  # same for every shard of a stage run: the worker reuses the stage object
    batch_docs: int
    store: RunStore | None = None  # the run's output in object storage: inputs fetched, outputs published

    @property
    def label(self) -> str:
        return self.in_path.name

    def run(self, cache: dict[str, Any]) -> dict[str, Any]:
        if self.store is not None and self.store.here() != self.store:
            return on_this_node(self).run(cache)
        start = time.perf_counter()
        reset_peak()
        if self.store is not None:  # made on another node, or by an earlier run on another machine
            self.store.pull_missing([self.in_path])
            if self.artifacts is not None:
                self.store.pull_tree(self.artifacts)
        stage = _cached_stage(cache, self.stage_ref, self.config, self.artifacts, self.instance_key)
        source = pq.ParquetFile(self.in_path)
        schema = source.schema_arrow
        for name, typ in stage.columns.items():
            if schema.get_field_index(name) < 0:
                schema = schema.append(pa.field(name, typ))
        kept_writer = ShardWriter(self.out_path, schema)
        rejects_writer: ShardWriter | None = None  # opened on the first reject: most shards have few
        stats = ShardStats()
        try:
            for batch in source.iter_batches(batch_size=self.batch_docs):
                texts = batch.column("text")
                stats.chars_in += pc.sum(pc.utf8_length(texts)).as_py() or 0
                stats.bytes_in += pc.sum(pc.binary_length(texts)).as_py() or 0
                docs = docs_from_table(batch)
                ids_in = Counter(d.id for d in docs)
                result = stage.process(docs)
                ids_out = Counter(d.id for d in result.kept) + Counter(r.doc.id for r in result.rejected)
                if ids_in != ids_out:
                    raise ConservationError(_conservation_message(stage.name, self.in_path, ids_in, ids_out))
                stats.docs_in += len(docs)
                stats.kept += len(result.kept)
                stats.chars_out += sum(len(d.text) for d in result.kept)
                stats.rejected.update(r.reason for r in result.rejected)
                stats.counters.update(result.counters)
                kept_writer.write(docs_to_table(result.kept, schema))
                if result.rejected:
                    rejects_writer = rejects_writer or ShardWriter(self.rejects_path, reject_schema(schema))
                    rejects_writer.write(rejects_to_table(result.rejected, stage.name, schema))
            outputs = [kept_writer.commit()]
            rejects = rejects_writer.commit() if rejects_writer else None
        except BaseException:
            kept_writer.abort()
            if rejects_writer:
                rejects_writer.abort()
            raise
        if rejects is None:
            self.rejects_path.unlink(missing_ok=True)
        stats.seconds = time.perf_counter() - start
        stats.peak_rss_mb = peak_rss_mb()
        marker = {"key": self.key, "outputs": outputs, "rejects": rejects, "stats": stats.to_dict(), "warnings": []}
        write_json_atomic(self.done_path, marker)
        if self.store is not None:
            self.store.push([self.out_path, *([self.rejects_path] if rejects else []), self.done_path])
        return marker


def on_this_node(task: Any) -> Any:
    """The task with its paths moved from the driver's work folder to this node's (`CLEANING_NODE_WORK`)."""
    here, origin = task.store.here(), task.store.local
    paths = {f.name: getattr(task, f.name) for f in fields(task)}
    moved = {
        k: here.local / p.relative_to(origin)
        for k, p in paths.items()
        if isinstance(p, Path) and p.is_relative_to(origin)
    }
    return replace(task, **moved, store=here)


def _cached_stage(cache: dict[str, Any], ref: str, config: Any, artifacts: Path | None, key: str) -> Stage:
    """One stage instance per worker and stage: models are loaded once, not per shard."""
    if cache.get("key") != key:
        cache.clear()
        cache["key"] = key
        cache["stage"] = load_stage_class(ref)(config, artifacts)
    return cache["stage"]


def _conservation_message(stage: str, path: Path, ids_in: Counter[str], ids_out: Counter[str]) -> str:
    lost = list((ids_in - ids_out).elements())[:5]
    extra = list((ids_out - ids_in).elements())[:5]
    return (
        f"stage {stage!r} broke conservation on {path.name}: {sum(ids_in.values())} in, "
        f"{sum(ids_out.values())} out; lost {lost}, unexpected {extra}"
    )


@dataclass
class ShardStats:
    """Counts for one unit of work; `docs_in == kept + sum(rejected)` always holds."""

    docs_in: int = 0
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    chars_in: int = 0
    chars_out: int = 0
    bytes_in: int = 0
    counters: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0  # of the worker process during this unit (model loading included)

    def to_dict(self) -> dict[str, Any]:
        return {
            "docs_in": self.docs_in,
            "kept": self.kept,
            "rejected": dict(sorted(self.rejected.items())),
            "chars_in": self.chars_in,
            "chars_out": self.chars_out,
            "bytes_in": self.bytes_in,
            "counters": dict(sorted(self.counters.items())),
            "seconds": round(self.seconds, 4),
            "peak_rss_mb": self.peak_rss_mb,
        }
