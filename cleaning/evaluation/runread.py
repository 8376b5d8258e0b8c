"""Read what a finished run did to a set of documents: raw text, final text, who rejected them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleaning.errors import CleaningError
from cleaning.pipeline import build_config
from cleaning.shards import read_json
from cleaning.stage import Stage, stage_key
from cleaning.stats import final_shards
from cleaning.tasks import load_stage_class


@dataclass
class Fate:
    """Where a document ended: kept (with its final text) or rejected by a stage for a reason."""

    kept_text: str | None = None
    stage: str = ""
    reason: str = ""
    detail: str = ""


@dataclass
class RunView:
    output: Path
    run: dict[str, Any]
    final_shards: Path

    def stage_dir(self, name: str) -> Path | None:
        found = [p for p in sorted(self.output.glob(f"[0-9][0-9]-{name}")) if p.is_dir()]
        return found[0] if found else None


def open_run(output: Path) -> RunView:
    run_json, summary_json = output / "run.json", output / "summary.json"
    if not run_json.is_file():
        raise CleaningError(f"{output}: not a run's output folder (no run.json)")
    if not summary_json.is_file():
        raise CleaningError(f"{output}: the run has not finished (no summary.json); rerun it first")
    deleted = sorted(p.parent.name for p in output.glob("[0-9][0-9]-*/deleted.json"))
    if deleted:
        raise CleaningError(
            f"{output}: the run deleted the shards of {', '.join(deleted)} once consumed (work.intermediates); "
            "rerun it with --set work.intermediates=keep to make them again"
        )
    return RunView(output, read_json(run_json), final_shards(output, read_json(summary_json)))


def rows_with_ids(folder: Path, ids: set[str], columns: list[str]) -> list[dict[str, Any]]:
    """Rows of every Parquet file in `folder` whose id is in `ids` (the rest is never decoded)."""
    wanted = pa.array(sorted(ids), pa.string())
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.parquet")):
        table = pq.read_table(path, columns=["id"])
        mask = pc.is_in(table["id"], value_set=wanted)
        if not pc.any(mask).as_py():
            continue
        names = [c for c in columns if c in pq.read_schema(path).names]
        rows.extend(pq.read_table(path, columns=names).filter(mask).to_pylist())
    return rows


def raw_records(view: RunView, ids: set[str]) -> dict[str, dict[str, Any]]:
    """The text and url of each document as the run read it (before any stage)."""
    return {r["id"]: r for r in rows_with_ids(view.output / "00-ingest" / "shards", ids, ["id", "text", "url"])}


def fates(view: RunView, ids: set[str]) -> dict[str, Fate]:
    """Each document's final text, or the stage and reason that rejected it."""
    out = {r["id"]: Fate(kept_text=r["text"]) for r in rows_with_ids(view.final_shards, ids, ["id", "text"])}
    rejects = view.output / "rejects"
    for folder in sorted(p for p in rejects.iterdir() if p.is_dir()) if rejects.is_dir() else []:
        cols = ["id", "reject_stage", "reject_reason", "reject_detail"]
        for r in rows_with_ids(folder, ids, cols):
            out[r["id"]] = Fate(
                None, r.get("reject_stage") or folder.name, r["reject_reason"], r["reject_detail"] or ""
            )
    return out


@dataclass
class LiveStage:
    """A stage of the run rebuilt from run.json with its artifacts, to explain single documents."""

    stage: Stage
    current: bool  # False when its config or data files changed since the run


def rebuild_stages(view: RunView, names: tuple[str, ...]) -> dict[str, LiveStage]:
    """The run's stages with these names, built as the run built them."""
    built: dict[str, LiveStage] = {}
    for entry in view.run.get("stages", []):
        options = {k: v for k, v in entry.items() if k not in ("stage", "key")}
        cls = load_stage_class(entry["stage"])
        if cls.name not in names:
            continue
        config = build_config(cls.Config, options, f"{view.output}/run.json: {cls.name}")
        stage_dir = view.stage_dir(cls.name)
        artifacts = stage_dir / "_prepare" / "artifacts" if stage_dir else None
        stage = cls(config, artifacts if artifacts and artifacts.is_dir() else None)
        built[cls.name] = LiveStage(stage, stage_key(cls, config) == entry.get("key"))
    return built


@dataclass
class QualityOfRun:
    """What annotating a run needs: its quality stage (model and threshold as the run applied them), the
    documents that stage judged, and the documents the genres stage clustered (if it ran)."""

    stage: Any  # cleaning.stages.quality.Quality
    model_path: Path
    judged: Path
    clustered: Path | None


def quality_of_run(output: Path) -> QualityOfRun:
    from cleaning.stages.quality import model_path

    view = open_run(output)
    live = rebuild_stages(view, ("quality",)).get("quality")
    folder = view.stage_dir("quality")
    if live is None or folder is None:
        raise CleaningError(f"{output}: this run has no quality stage")
    dirs = sorted(p for p in output.glob("[0-9][0-9]-*") if p.is_dir())
    before = dirs[dirs.index(folder) - 1] if dirs.index(folder) > 0 else folder
    genres = view.stage_dir("genres")
    artifacts = folder / "_prepare" / "artifacts"
    return QualityOfRun(
        live.stage,
        model_path(live.stage.config, artifacts if artifacts.is_dir() else None),
        before / "shards",
        genres / "shards" if genres else None,
    )
