"""The rules stage's trained models: P(boilerplate) per line and P(junk) per page.

Each model is a LightGBM text file (`rules/models/NAME.txt`, readable and stable across LightGBM
versions) with a card (`NAME.json`): the feature names it was trained on, the line-rule ids behind
the categorical `rule` feature, its cross-validated figures and how to retrain it. A model whose
features differ from the code's is refused with a one-line error, never silently misread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.errors import CleaningError

RETRAIN = "retrain with `cleaning rules train` (rules/README.md)"


class Model:
    """A LightGBM binary classifier with its card; `predict` returns P(positive class)."""

    def __init__(self, path: Path, features: list[str]) -> None:
        import lightgbm

        model, card = path.with_suffix(".txt"), path.with_suffix(".json")
        if not model.is_file() or not card.is_file():
            raise CleaningError(f"model {model} or its card {card.name} not found ({RETRAIN})")
        self.card: dict[str, Any] = json.loads(card.read_text(encoding="utf-8"))
        if self.card.get("features") != features:
            theirs = set(self.card.get("features") or [])
            diff = sorted(theirs.symmetric_difference(features))[:6]
            raise CleaningError(f"{model} was trained on other features (differ: {diff}); {RETRAIN}")
        try:
            self.booster = lightgbm.Booster(model_file=str(model))
        except lightgbm.basic.LightGBMError as exc:
            raise CleaningError(f"{model}: not a readable LightGBM model: {exc}") from exc
        self.path = model

    def predict(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 0:
            return np.empty(0)
        return self.booster.predict(x, num_threads=1)


def rule_codes(card: dict[str, Any], rule_ids: list[str]) -> dict[str, int]:
    """The categorical code of each line rule as the model knows it: by id, so adding or reordering
    rules never shifts codes; a rule the model has not seen gets the 'other rule' code."""
    known = {rule_id: i + 1 for i, rule_id in enumerate(card.get("rules", []))}
    other = len(known) + 1
    return {rule_id: known.get(rule_id, other) for rule_id in rule_ids}
