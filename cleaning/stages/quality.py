"""quality: P(noise) from a fastText classifier trained on hand annotations; reject above a threshold."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from cleaning.document import Doc, Reject, StageResult
from cleaning.errors import CleaningError
from cleaning.quality import model as qm
from cleaning.quality.annotations import annotation_files, training_set
from cleaning.quality.train import train_and_describe
from cleaning.shards import file_hash
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
    folds: int = field(default=5, metadata={"help": "cross-validation folds when training"})
    skip_invalid: bool = field(default=False, metadata={"help": "train even if some annotation lines are invalid"})

    def __post_init__(self) -> None:
        # Absolute paths: Ray workers may run in another working directory.
        self.model = str(_resolve(self.model)) if self.model else ""
        self.annotations = [str(_resolve(p)) for p in self.annotations]
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
        path = Path(config.model) if config.model else (artifacts or Path()) / MODEL
        self.model = qm.load(path)
        card = json.loads(path.with_suffix(".card.json").read_text(encoding="utf-8"))
        self.representation = card["params"]["representation"]
        self.chunk_chars = int(card["chunk_chars"])
        self.threshold = float(config.threshold if config.threshold is not None else card["threshold"])

    @classmethod
    def data_fingerprint(cls, config: QualityConfig) -> str:
        if config.model:
            model = Path(config.model)
            return file_hash(model) if model.is_file() else "missing"
        files = annotation_files([Path(p) for p in config.annotations])
        return ",".join(file_hash(p) for p in files)

    @classmethod
    def prepare(cls, config: QualityConfig, ctx: PrepareContext) -> None:
        """Train on the annotations when no model is given (a fresh clone trains its own)."""
        if config.model:
            return
        annotations, report = training_set([Path(p) for p in config.annotations], config.skip_invalid)
        train_and_describe(annotations, report, ctx.workdir / MODEL, folds=config.folds, good_recall=config.good_recall,
                           learning_curve=False)  # fmt: skip

    def process(self, docs: list[Doc]) -> StageResult:
        scores = qm.score_documents(self.model, [d.text for d in docs], self.representation, self.chunk_chars)
        result = StageResult()
        for doc, score in zip(docs, scores, strict=True):
            doc.fields["quality_score"] = float(score)
            if score > self.threshold:
                result.rejected.append(Reject(doc, "quality.noise", f"P(noise)={score:.3f} > {self.threshold:.3f}"))
            else:
                result.kept.append(doc)
        return result
