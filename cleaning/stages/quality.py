"""quality: P(noise) from fastText plus a calibrated combiner, trained on hand annotations and labelled
pages; reject above the threshold the model card chose for its good-recall target."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from cleaning.document import Doc, Reject, StageResult
from cleaning.errors import CleaningError
from cleaning.quality import model as qm
from cleaning.quality.annotations import annotation_files, check_annotations, training_set
from cleaning.quality.pages import labelled_pages, page_documents
from cleaning.quality.train import train_and_describe
from cleaning.shards import file_hash, file_sha256
from cleaning.stage import PrepareContext, Stage, register

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL = "quality.bin"


@dataclass
class QualityConfig:
    model: str = field(
        default="", metadata={"help": "a trained model (.bin with its .card.json); empty: train from annotations"}
    )
    annotations: list[str] = field(
        default_factory=lambda: ["annotations"],
        metadata={"help": "JSONL files or folders to train on when model is empty"},
    )
    threshold: float | None = field(
        default=None, metadata={"help": "reject when P(noise) > threshold; empty: the model card's CV-chosen threshold"}
    )
    good_recall: float = field(default=0.95, metadata={"help": "CV recall on good that the chosen threshold keeps"})
    pages: list[str] = field(
        default_factory=lambda: ["annotations/pages"],
        metadata={"help": "line-labelled pages (KEEP/DROP) to train on too, where this run's corpus has them"},
    )
    page_min_chars: int = field(
        default=200, metadata={"help": "labelled pages with fewer characters left are not trained on (a rules call)"}
    )
    folds: int = field(default=5, metadata={"help": "cross-validation folds when training"})
    skip_invalid: bool = field(default=False, metadata={"help": "train even if some annotation lines are invalid"})

    def __post_init__(self) -> None:
        # Absolute paths: Ray workers may run in another working directory.
        self.model = str(_resolve(self.model)) if self.model else ""
        self.annotations = [str(_resolve(p)) for p in self.annotations]
        self.pages = [str(_resolve(p)) for p in self.pages]
        if self.model and not Path(self.model).with_suffix(".card.json").is_file():
            raise CleaningError(
                f"quality model {self.model} or its .card.json not found (train: cleaning quality train)"
            )


def _resolve(path: str) -> Path:
    p = Path(path)
    if p.is_absolute():
        return p
    return p.resolve() if p.exists() else (PROJECT_ROOT / p).resolve()


@register
class Quality(Stage):
    """fastText good/noise classifier: adds quality_score = P(noise), rejects above the threshold."""

    name = "quality"
    Config = QualityConfig
    columns: ClassVar[dict[str, pa.DataType]] = {"quality_score": pa.float32()}

    def __init__(self, config: QualityConfig, artifacts: Path | None = None) -> None:
        super().__init__(config, artifacts)
        self.model = qm.QualityModel.load(model_path(config, artifacts))
        self.threshold = float(config.threshold if config.threshold is not None else self.model.threshold)

    @classmethod
    def data_fingerprint(cls, config: QualityConfig) -> str:
        if config.model:
            model = Path(config.model)
            return file_hash(model) if model.is_file() else "missing"
        files = annotation_files([Path(p) for p in config.annotations])
        pages = annotation_files(_existing(config.pages)) if _existing(config.pages) else []
        return ",".join(file_hash(p) for p in [*files, *pages])

    @classmethod
    def prepare(cls, config: QualityConfig, ctx: PrepareContext) -> None:
        """Train on the annotations, and on the labelled pages found in this run, when no model is given."""
        if config.model:
            ctx.log(f"model {config.model} (card {Path(config.model).with_suffix('.card.md')})")
            for line in stale_annotations(Path(config.model), [Path(p) for p in config.annotations]):
                ctx.log(line)
            return
        paths = [Path(p) for p in config.annotations]
        annotations, report = training_set(paths, config.skip_invalid)
        labelled = labelled_pages(_existing(config.pages)) if _existing(config.pages) else []
        pages, counts = page_documents(labelled, ctx.shards, config.page_min_chars)
        # Training is byte-reproducible (fastText runs in a fresh process) and the card has no timings,
        # so an upstream change that leaves the training data alone gives the same artifacts: no rescoring.
        ctx.log(f"training on {len(annotations)} annotations and {len(pages)} labelled pages of this run")
        out = ctx.workdir / MODEL
        card = train_and_describe(annotations, report, out, pages, counts, folds=config.folds,
                                  good_recall=config.good_recall, log=ctx.log)  # fmt: skip
        cv = card["cv"]
        ctx.log(f"CV accuracy {cv['at_threshold']['accuracy']}, good recall {cv['at_threshold']['good']['recall']} "
                f"at threshold {card['threshold']}; model {out}, card {out.with_suffix('.card.md')}")  # fmt: skip

    def process(self, docs: list[Doc]) -> StageResult:
        scores = self.model.score([d.text for d in docs])
        result = StageResult()
        for doc, score in zip(docs, scores, strict=True):
            doc.fields["quality_score"] = float(score)
            if score > self.threshold:
                result.rejected.append(Reject(doc, "quality.noise", f"P(noise)={score:.3f} > {self.threshold:.3f}"))
            else:
                result.kept.append(doc)
        return result


def model_path(config: QualityConfig, artifacts: Path | None) -> Path:
    """The model a run uses: the configured one, or the one its corpus-wide step trained."""
    return Path(config.model) if config.model else (artifacts or Path()) / MODEL


def _existing(paths: list[str]) -> list[Path]:
    """Page label paths that exist: the default annotations/pages may be absent in a user's folder."""
    return [Path(p) for p in paths if Path(p).exists()]


def stale_annotations(model: Path, annotations: list[Path]) -> list[str]:
    """Warnings when the data a given model was trained on changed since (it does not retrain by itself):
    a file it was trained on changed or is gone, or a new file holds annotations."""
    card = json.loads(model.with_suffix(".card.json").read_text(encoding="utf-8"))
    trained = {_resolve(f["path"]): f["sha256"] for f in card.get("data", {}).get("files", [])}
    if not trained:
        return []
    report = check_annotations(annotations) if annotations else None
    current = {Path(a.where.rsplit(":", 1)[0]).resolve() for a in report.annotations} if report else set()
    changed = [p for p, sha in trained.items() if not p.is_file() or file_sha256(p) != sha]
    added = sorted(current - set(trained))
    if not (changed or added):
        return []
    files = ", ".join(p.name for p in [*changed, *added])
    return [f"warning: annotations changed since {model.name} was trained ({files}); retrain: make train-quality"]
