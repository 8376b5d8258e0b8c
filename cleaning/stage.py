"""The stage contract: a pure function over a batch of documents, plus a config dataclass.

A stage never imports Ray and never touches files of the run: the runner feeds it batches and
writes what it returns. Keeping stages pure is what makes them testable on a list of `Doc`s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from cleaning.document import Doc, Reject, StageResult

STAGES: dict[str, type[Stage]] = {}


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: make a stage usable by name in pipeline configs."""
    STAGES[cls.name] = cls
    return cls


@dataclass(frozen=True)
class PrepareContext:
    """What a corpus-wide step gets: every input shard of the stage and a folder for its artifacts.

    `map` runs a picklable function over items in parallel (Ray actors or in-process), so a
    corpus-wide step such as counting lines per host can itself use all workers.
    """

    shards: list[Path]
    workdir: Path
    map: Callable[[Callable[[Any], Any], list[Any], str], list[Any]]
    log: Callable[[str], None] = print  # one line of progress for the person running the pipeline
    progress: bool = False  # whether long steps may draw their own progress display on stderr
    output: Path | None = None  # the run's OUTPUT: earlier stages' rejects, models later runs reuse


@dataclass(frozen=True)
class FinishContext:
    """What a stage's closing step gets: the shards it wrote, its prepare artifacts, and where its
    products go (`OUTPUT/<products>`), plus a scratch folder kept between attempts for resuming."""

    shards: list[Path]
    hashes: list[str]  # content hash of each shard (from its marker): a key for resuming
    artifacts: Path | None
    products: Path
    workdir: Path
    map: Callable[[Callable[[Any], Any], list[Any], str], list[Any]]
    log: Callable[[str], None] = print
    progress: bool = False


class Stage:
    """Base class. Subclasses set `name` and `Config`, and override `apply` or `process`.

    - `apply(doc, counters)` returns the (possibly edited) document, or a `Reject`; the default
      `process` calls it per document. Override `process` when batching pays (model inference).
    - `counters` is where line-level edits are counted (`"lines_removed.<rule>"`, …); the runner
      adds them up per shard and per stage.
    - `prepare` is the hook for a corpus-wide step (train a model, fit k-means, cluster duplicates)
      that runs once before any shard is processed; it writes artifacts to `ctx.workdir`, and the
      stage reads them back in `__init__` from `artifacts`. Artifacts are fingerprinted by the runner.
    - `columns` declares the columns the stage adds, so every shard has the same schema.
    - `finish` is the hook for a closing step after every shard is done (write token files from
      the stage's shards); its products go to `OUTPUT/<products>`.
    - bump `version` when a code change alters the output: finished shards are then redone.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    version: ClassVar[int] = 1
    columns: ClassVar[dict[str, pa.DataType]] = {}
    products: ClassVar[str] = ""  # folder under OUTPUT for what `finish` writes
    finish_options: ClassVar[frozenset[str]] = frozenset()  # options only `finish` reads: changing one reruns only it

    def __init__(self, config: Any, artifacts: Path | None = None) -> None:
        self.config = config
        self.artifacts = artifacts

    @classmethod
    def prepare(cls, config: Any, ctx: PrepareContext) -> None:
        """Corpus-wide step before the per-shard pass; most stages need none."""

    @classmethod
    def data_fingerprint(cls, config: Any) -> str:
        """Hash of data files the stage reads (rules, word lists): editing them reruns the stage."""
        return ""

    @classmethod
    def finish(cls, config: Any, ctx: FinishContext) -> dict[str, Any]:
        """Closing step over the stage's output shards; returns a summary for the run's summary.json."""
        return {}

    @classmethod
    def finish_fingerprint(cls, config: Any) -> str:
        """Hash of files only the closing step reads (extra corpora): changing them reruns only it."""
        return ""

    @classmethod
    def has_finish(cls) -> bool:
        return cls.finish.__func__ is not Stage.finish.__func__  # type: ignore[attr-defined]

    @classmethod
    def has_prepare(cls) -> bool:
        return cls.prepare.__func__ is not Stage.prepare.__func__  # type: ignore[attr-defined]

    def process(self, docs: list[Doc]) -> StageResult:
        """Judge a batch; every input document must come back either kept or rejected."""
        result = StageResult()
        for doc in docs:
            out = self.apply(doc, result.counters)
            if isinstance(out, Reject):
                result.rejected.append(out)
            else:
                result.kept.append(out)
        return result

    def line_verdicts(self, doc: Doc) -> list[str | None] | None:
        """For stages that remove lines: per line of `doc`, the rule that would remove it (None when
        kept). `cleaning eval` uses it to say which rule removed a labelled content line."""
        return None

    def apply(self, doc: Doc, counters: Counter[str]) -> Doc | Reject:
        raise NotImplementedError(f"stage {self.name!r} must override apply() or process()")


def config_dict(config: Any) -> dict[str, Any]:
    """A stage config as plain data (for hashing, manifests and `cleaning stages`)."""
    return dataclasses.asdict(config)


def stage_key(stage_cls: type[Stage], config: Any) -> str:
    """Fingerprint of what a stage does: its name, code version and resolved config."""
    payload = {
        "stage": stage_cls.name,
        "version": stage_cls.version,
        "config": {k: v for k, v in config_dict(config).items() if k not in stage_cls.finish_options},
        "data": stage_cls.data_fingerprint(config),
    }
    return sha256_text(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def fingerprint(parts: Iterable[str]) -> str:
    """Combine fingerprints in order into one."""
    return sha256_text("\x1f".join(parts))
