"""Test-only stages, loaded by pipeline configs as `tests.helpers:Class` (also inside Ray workers)."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from cleaning.document import Doc, Reject, StageResult
from cleaning.stage import PrepareContext, Stage


@dataclass
class CrashOnceConfig:
    crash_id: str = ""
    marker: str = ""


class CrashOnce(Stage):
    """Kills its own worker process (like an OOM kill) the first time it sees `crash_id`."""

    name = "crash_once"
    Config = CrashOnceConfig

    def apply(self, doc: Doc, counters: Counter[str]) -> Doc:
        if doc.id == self.config.crash_id and not os.path.exists(self.config.marker):
            Path(self.config.marker).write_text("crashed")
            os._exit(1)
        return doc


@dataclass
class SleepyConfig:
    seconds: float = 0.5


class Sleepy(Stage):
    """Slow but faithful: lets a test kill the run in the middle of a stage."""

    name = "sleepy"
    Config = SleepyConfig

    def process(self, docs: list[Doc]) -> StageResult:
        time.sleep(self.config.seconds)
        return StageResult(kept=docs)


@dataclass
class LoseOneConfig:
    pass


class LoseOne(Stage):
    """A buggy stage that silently drops a document: the runner must refuse it."""

    name = "lose_one"
    Config = LoseOneConfig

    def process(self, docs: list[Doc]) -> StageResult:
        return StageResult(kept=docs[1:])


@dataclass
class FailOnConfig:
    fail_id: str = ""


class FailOn(Stage):
    """Raises on one document, as a stage with a bug would."""

    name = "fail_on"
    Config = FailOnConfig

    def apply(self, doc: Doc, counters: Counter[str]) -> Doc | Reject:
        if doc.id == self.config.fail_id:
            raise ValueError(f"cannot handle {doc.id}")
        return doc


@dataclass
class CorpusShareConfig:
    min_chars: int = 0


def _count_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


class CorpusShare(Stage):
    """Uses the corpus-wide hook: counts all documents first, then adds each doc's share of it."""

    name = "corpus_share"
    Config = CorpusShareConfig
    columns: ClassVar[dict[str, pa.DataType]] = {"corpus_docs": pa.int64()}

    @classmethod
    def prepare(cls, config: CorpusShareConfig, ctx: PrepareContext) -> None:
        counts = ctx.map(_count_rows, ctx.shards, "count")
        (ctx.workdir / "count.json").write_text(json.dumps({"docs": sum(counts)}))

    def __init__(self, config: CorpusShareConfig, artifacts: Path | None = None) -> None:
        super().__init__(config, artifacts)
        assert artifacts is not None
        self.total = json.loads((artifacts / "count.json").read_text())["docs"]

    def apply(self, doc: Doc, counters: Counter[str]) -> Doc | Reject:
        if len(doc.text) < self.config.min_chars:
            return Reject(doc, "corpus_share.short", f"{len(doc.text)} chars")
        doc.fields["corpus_docs"] = self.total
        return doc


def write_pipeline(path: Path, stages: list[dict], **input_options: object) -> Path:
    """A pipeline YAML for a test: normalize is not implied, list every stage."""
    path.write_text(yaml.safe_dump({"input": input_options, "stages": stages}, allow_unicode=True))
    return path


@dataclass
class NoOptions:
    pass


class QualityFromMeta(Stage):
    """Sets quality_score from the input field `q` (kept in `meta`), to test who survives dedup."""

    name = "quality_from_meta"
    Config = NoOptions
    columns: ClassVar[dict[str, pa.DataType]] = {"quality_score": pa.float32()}

    def apply(self, doc: Doc, counters: Counter[str]) -> Doc:
        doc.fields["quality_score"] = json.loads(doc.fields.get("meta") or "{}").get("q")
        return doc
