"""Per-cluster and per-domain weights set by data leads in a YAML file (`pipelines/weights.yaml`).

    genre_model: g-…    # the genre model whose cluster ids these are (required once any weight is set)
    default: 1.0        # every cluster not listed
    domains: {3: 0.5}   # a whole domain
    clusters: {12: 0, 40: 0.3, 7: 2}   # wins over its domain's weight

0 drops a cluster, below 1 keeps that share of its documents, above 1 repeats them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from cleaning.errors import CleaningError

_KEYS = {"genre_model", "default", "domains", "clusters"}


@dataclass(frozen=True)
class Weights:
    default: float = 1.0
    domains: dict[int, float] = field(default_factory=dict)
    clusters: dict[int, float] = field(default_factory=dict)
    genre_model: str | None = None  # the model whose cluster ids these are

    def of(self, cluster: int, domain: int) -> float:
        if cluster in self.clusters:
            return self.clusters[cluster]
        return self.domains.get(domain, self.default)

    def per_cluster(self, domain_of: np.ndarray) -> np.ndarray:
        """The weight of every cluster 0..k-1, given each cluster's domain."""
        return np.array([self.of(c, int(d)) for c, d in enumerate(domain_of)], dtype=np.float64)

    @property
    def is_identity(self) -> bool:
        return self.default == 1.0 and all(w == 1.0 for w in (*self.domains.values(), *self.clusters.values()))


def load_weights(path: Path | str) -> Weights:
    """Read and check a weights file; every problem is one line naming the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise CleaningError(f"weights file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CleaningError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise CleaningError(f"{path}: expected a mapping with default, domains, clusters")
    unknown = set(data) - _KEYS
    if unknown:
        raise CleaningError(
            f"{path}: unknown key(s) {', '.join(map(str, sorted(unknown, key=str)))}; use {', '.join(sorted(_KEYS))}"
        )
    model = data.get("genre_model")
    if model is not None and not isinstance(model, str):
        raise CleaningError(f"{path}: genre_model must be a model id such as g-1a2b3c4d5e6f, got {model!r}")
    return Weights(
        genre_model=model,
        default=_weight(path, "default", data.get("default", 1.0)),
        domains=_table(path, "domains", data.get("domains")),
        clusters=_table(path, "clusters", data.get("clusters")),
    )


def _table(path: Path, name: str, table: object) -> dict[int, float]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise CleaningError(f"{path}: {name} must be a mapping of id: weight")
    out = {}
    for key, value in table.items():
        try:
            ident = int(key)
        except (TypeError, ValueError):
            raise CleaningError(f"{path}: {name}: {key!r} is not a {name[:-1]} id (an integer)") from None
        if ident < 0:
            raise CleaningError(f"{path}: {name}: id {ident} is negative")
        out[ident] = _weight(path, f"{name}.{key}", value)
    return out


def _weight(path: Path, where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise CleaningError(f"{path}: {where}: weight must be a number >= 0, got {value!r}")
    return float(value)


def check_model(weights: Weights, path: Path | str, models: set[str]) -> None:
    """Weights apply only to the clusters of the model they were written for: anything else is one line."""
    if weights.is_identity or not models:
        return
    if not weights.genre_model:
        raise CleaningError(
            f"{path}: sets weights but not the genre model they are for; add `genre_model: {sorted(models)[0]}` "
            "(shown in the balance report) so they can never apply to another model's clusters"
        )
    if models != {weights.genre_model}:
        raise CleaningError(
            f"{path}: written for genre model {weights.genre_model}, but this run's clusters come from "
            f"{', '.join(sorted(models))}, whose cluster ids mean other genres; reuse the model it was written for "
            "(--set genres.model=FOLDER) or set weights again from this run's report"
        )
