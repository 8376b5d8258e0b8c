"""Pipeline configs: YAML in `pipelines/`, validated into typed stage configs before anything runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pydantic
import yaml

from cleaning.errors import CleaningError
from cleaning.readers import ReaderConfig
from cleaning.stage import Stage, config_dict, stage_key
from cleaning.tasks import load_stage_class


@dataclass
class InputConfig(ReaderConfig):
    shard_mb: float = field(default=128.0, metadata={"help": "MB of text per shard: bounds memory per worker"})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("shard_mb", "max_doc_mb", "max_page_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a number above 0, got {getattr(self, name)}")
        if not 0 <= self.min_kana_share <= 1:
            raise ValueError(f"min_kana_share must be between 0 and 1, got {self.min_kana_share}")


INTERMEDIATES = ("keep", "delete", "auto")


@dataclass
class WorkConfig:
    """What happens to a stage's shards once the next stage has read them (not part of any key:
    outputs are the same either way)."""

    intermediates: str = field(
        default="auto",
        metadata={
            "help": "keep | delete | auto: delete a stage's shards once the next stage has consumed them; "
            "auto = delete when the input is at least auto_gb"
        },
    )
    auto_gb: float = field(default=20.0, metadata={"help": "input size (GB) from which `auto` deletes"})

    def __post_init__(self) -> None:
        if self.intermediates not in INTERMEDIATES:
            raise ValueError(f"intermediates must be one of {', '.join(INTERMEDIATES)}, got {self.intermediates!r}")

    def deletes(self, input_bytes: int) -> bool:
        if self.intermediates == "auto":
            return input_bytes >= self.auto_gb * 1e9
        return self.intermediates == "delete"


@dataclass
class StageSpec:
    """One entry of `stages:`: the stage class and its validated config."""

    ref: str
    cls: type[Stage]
    config: Any

    @property
    def name(self) -> str:
        return self.cls.name

    @cached_property
    def key(self) -> str:
        """Computed once per loaded pipeline: it hashes the stage's data files (rules, annotations),
        and the runner needs it for every shard."""
        return stage_key(self.cls, self.config)


@dataclass
class Pipeline:
    path: Path
    input: InputConfig
    stages: list[StageSpec]
    batch_docs: int = 1024
    work: WorkConfig = field(default_factory=WorkConfig)

    def describe(self) -> dict[str, Any]:
        """The resolved config, as written to OUTPUT/run.json."""
        return {
            "pipeline": str(self.path),
            "input": config_dict(self.input),
            "batch_docs": self.batch_docs,
            "work": config_dict(self.work),
            "stages": [{"stage": s.ref, "key": s.key, **config_dict(s.config)} for s in self.stages],
        }


def load_pipeline(path: Path, overrides: list[str] | None = None) -> Pipeline:
    """Read and validate a pipeline file; every problem becomes a CleaningError naming the file."""
    if not path.is_file():
        raise CleaningError(f"pipeline config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise CleaningError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise CleaningError(f"{path}: expected a mapping with 'input' and 'stages'")
    for item in overrides or []:
        _apply_override(raw, item, path)
    unknown = set(raw) - {"input", "work", "stages", "batch_docs", "name", "description"}
    if unknown:
        raise CleaningError(
            f"{path}: unknown top-level keys {sorted(unknown)}; expected input, work, stages, batch_docs"
        )
    input_cfg = build_config(InputConfig, raw.get("input") or {}, f"{path}: input")
    work_cfg = build_config(WorkConfig, raw.get("work") or {}, f"{path}: work")
    stages_raw = raw.get("stages") or []
    if not isinstance(stages_raw, list):
        raise CleaningError(f"{path}: 'stages' must be a list")
    stages = [_build_stage(entry, i, path) for i, entry in enumerate(stages_raw, 1)]
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise CleaningError(f"{path}: a stage appears twice in {names}")
    batch_docs = raw.get("batch_docs", 1024)
    if not isinstance(batch_docs, int) or batch_docs < 1:
        raise CleaningError(f"{path}: batch_docs must be a positive integer")
    return Pipeline(path, input_cfg, stages, batch_docs, work_cfg)


def _build_stage(entry: Any, index: int, path: Path) -> StageSpec:
    if isinstance(entry, str):
        entry = {"stage": entry}
    if not isinstance(entry, dict) or "stage" not in entry:
        raise CleaningError(f"{path}: stage {index} must be a mapping with a 'stage' key")
    options = dict(entry)
    ref = str(options.pop("stage"))
    try:
        cls = load_stage_class(ref)
    except CleaningError as exc:
        raise CleaningError(f"{path}: stage {index}: {exc}") from exc
    config = build_config(cls.Config, options, f"{path}: stage {index} ({cls.name})")
    return StageSpec(ref, cls, config)


def build_config(cls: type, options: dict[str, Any], where: str) -> Any:
    """Validate `options` against a config dataclass: unknown keys and wrong types are errors."""
    if not isinstance(options, dict):
        raise CleaningError(f"{where}: expected a mapping of options")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(options) - known
    if unknown:
        raise CleaningError(f"{where}: unknown option(s) {sorted(unknown)}; valid: {sorted(known)}")
    try:
        return pydantic.TypeAdapter(cls).validate_python(options, strict=False)
    except pydantic.ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise CleaningError(f"{where}: {problems}") from exc


def _problem(error: Any) -> str:
    where = ".".join(map(str, error["loc"]))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _apply_override(raw: dict[str, Any], item: str, path: Path) -> None:
    """`--set input.shard_mb=4`, `--set work.intermediates=delete` or `--set normalize.unicode_form=NFC`
    (value parsed as YAML)."""
    target, sep, value = item.partition("=")
    section, dot, option = target.partition(".")
    if not sep or not dot or not option:
        raise CleaningError(f"--set {item!r}: expected SECTION.OPTION=VALUE, e.g. input.shard_mb=4")
    parsed = yaml.safe_load(value)
    if section in ("input", "work"):
        raw[section] = {**(raw.get(section) or {}), option: parsed}
        return
    for entry in raw.get("stages") or []:
        if isinstance(entry, dict) and section in (entry.get("stage"), str(entry.get("stage")).split(":")[-1]):
            entry[option] = parsed
            return
    raise CleaningError(f"--set {item!r}: no stage {section!r} in {path}")
