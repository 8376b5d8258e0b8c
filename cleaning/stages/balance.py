"""balance: apply data leads' per-cluster weights (`pipelines/weights.yaml`) deterministically.

Weight 0 rejects a cluster's documents, w < 1 keeps a share w of them (chosen by a salted hash of
the id, so reruns keep the same ones), w > 1 keeps them all and sets `repeat` (floor(w), plus one
more for a share frac(w)) for the tokenize stage to write them that many times.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import xxhash

from cleaning.document import Doc, Reject
from cleaning.errors import CleaningError
from cleaning.genres.model import models_in
from cleaning.genres.weights import check_model, load_weights
from cleaning.shards import file_hash, write_json_atomic
from cleaning.stage import PrepareContext, Stage, register

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class BalanceConfig:
    weights: str = field(default="pipelines/weights.yaml", metadata={"help": "YAML of per-cluster/domain weights"})
    salt: str = field(default="balance", metadata={"help": "changes which documents a downsampling keeps"})

    def __post_init__(self) -> None:
        path = Path(self.weights)
        path = path if path.is_absolute() or path.exists() else PROJECT_ROOT / path
        self.weights = str(path.resolve())
        load_weights(self.weights)  # a bad file fails before the run starts


@register
class Balance(Stage):
    """Downsample (reject) or repeat documents by their cluster's weight; needs the genres stage."""

    name = "balance"
    Config = BalanceConfig
    columns: ClassVar[dict[str, pa.DataType]] = {"weight": pa.float32(), "repeat": pa.int32()}

    def __init__(self, config: BalanceConfig, artifacts: Path | None = None) -> None:
        super().__init__(config, artifacts)
        self.weights = load_weights(config.weights)

    @classmethod
    def data_fingerprint(cls, config: BalanceConfig) -> str:
        return file_hash(Path(config.weights))

    @classmethod
    def prepare(cls, config: BalanceConfig, ctx: PrepareContext) -> None:
        """Refuse weights written for another genre model before a single document is weighed."""
        models = set().union(*ctx.map(models_in, ctx.shards, "read genre model ids")) if ctx.shards else set()
        check_model(load_weights(config.weights), config.weights, models)
        write_json_atomic(ctx.workdir / "balance.json", {"genre_models": sorted(models)})

    def apply(self, doc: Doc, counters: Counter[str]) -> Doc | Reject:
        cluster, domain = doc.fields.get("cluster"), doc.fields.get("domain")
        if cluster is None:
            raise CleaningError("balance needs the cluster column: put the genres stage before it")
        w = self.weights.of(cluster, domain if domain is not None else -1)
        draw = xxhash.xxh3_64_intdigest(f"{self.config.salt}\x1f{doc.id}".encode()) / 2.0**64
        repeat = math.floor(w) + (draw < w - math.floor(w))
        doc.fields.update(weight=w, repeat=repeat)
        if repeat == 0:
            reason = "balance.dropped" if w == 0 else "balance.downsampled"
            return Reject(doc, reason, f"cluster {cluster} (domain {domain}) has weight {w:g}")
        if repeat > 1:
            counters["balance.repeated_copies"] += repeat - 1
        return doc
