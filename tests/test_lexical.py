"""The line model's lexical score: hashed n-grams of a line's two ends and a linear model over them."""

from __future__ import annotations

import itertools
import json
import math
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cleaning.errors import CleaningError
from cleaning.rules.engine import RulesEngine
from cleaning.rules.lexical import LexicalModel, fit_lexical, ngram_matrix
from cleaning.rules.linescan import codepoints
from cleaning.rules.ruleset import DEFAULT_RULES_DIR, load_rules
from tests.pages import PARTS, PROSE

M64 = (1 << 64) - 1


def mix(h: int) -> int:
    """linescan._mix in plain Python integers."""
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & M64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & M64
    return h ^ (h >> 31)


def reference_row(line: str, cut: int, bits: int) -> dict[int, float]:
    """What the compiled pass should give for one line, written out the slow way."""
    ends = line if len(line) <= 2 * cut else line[:cut] + "\0" + line[-cut:]
    tokens = [ord(c) for c in ends]
    mask = (1 << bits) - 1
    keys = [mix(t | (1 << 43)) & mask for t in tokens]
    keys += [mix((a << 21) | b) & mask for a, b in itertools.pairwise(tokens)]
    counts = Counter(keys)
    norm = math.sqrt(sum(c * c for c in counts.values())) or 1.0
    return {k: c / norm for k, c in counts.items()}


def test_ngram_rows_are_the_hashed_counts_of_the_line_ends() -> None:
    lines = ["", "あ", "ホーム", "こちら😀から", "い" * 40, "一二三四五六七八九十" * 4 + "末"]
    lines.append("詳しくはこちらをご覧ください。" * 5)
    cp, starts, lens, _ = codepoints(lines)
    rows = np.array([6, 0, 3, 5, 4, 2, 1])  # any subset, any order
    x = ngram_matrix(cp, starts, lens, rows, cut=20, bits=12).tocsr()
    for i, r in enumerate(rows.tolist()):
        got = {int(k): float(v) for k, v in zip(x[i].indices, x[i].data, strict=True)}
        want = reference_row(lines[r], 20, 12)
        assert got.keys() == want.keys(), lines[r]
        assert all(abs(got[k] - want[k]) < 1e-6 for k in want)
    assert x[1].nnz == 0  # the empty line has no n-grams (its score is the intercept)
    long_line = lines[5]
    assert reference_row(long_line, 20, 12) == reference_row(long_line[:20] + "X" * 3 + long_line[-20:], 20, 12), (
        "only the first and last 20 characters count"
    )


def _lines_and_labels(items: list[str], prose: list[str]) -> tuple[list[str], np.ndarray]:
    return items + prose, np.array([1] * len(items) + [0] * len(prose))


def test_the_score_learns_boilerplate_wording_and_survives_a_round_trip(tmp_path: Path) -> None:
    rng = random.Random(5)
    furniture = PARTS["promo"] + PARTS["related"] + PARTS["nav"] + PARTS["footer"] + PARTS["related_header"]
    furniture, prose = rng.sample(furniture, len(furniture)), rng.sample(PROSE, len(PROSE))
    half_f, half_p = len(furniture) // 2, len(prose) // 2
    train_lines, y = _lines_and_labels(furniture[:half_f], prose[:half_p])
    test_lines, y_test = _lines_and_labels(furniture[half_f:], prose[half_p:])
    cp, starts, lens, _ = codepoints(train_lines)
    x = ngram_matrix(cp, starts, lens, np.arange(len(train_lines)), cut=20, bits=16)
    model = fit_lexical(x, y, np.ones(len(y)), cut=20, bits=16)
    cp, starts, lens, _ = codepoints(test_lines)
    scores = model.score(cp, starts, lens, np.arange(len(test_lines)))
    assert roc_auc_score(y_test, scores) > 0.9, "lines it never saw: boilerplate wording scores higher"

    path = tmp_path / "lexical.npy"
    model.save(path)
    card = {"lexical": model.describe()}
    again = LexicalModel.load(path, card)
    assert np.array_equal(again.score(cp, starts, lens, np.arange(len(test_lines))), scores)
    with pytest.raises(CleaningError, match="no lexical entry"):
        LexicalModel.load(path, {})
    with pytest.raises(CleaningError, match="2\\*\\*12"):
        LexicalModel.load(path, {"lexical": {**model.describe(), "bits": 12}})
    with pytest.raises(CleaningError, match="both boilerplate and content"):
        fit_lexical(x, np.zeros(len(y), dtype=int), np.ones(len(y)), cut=20, bits=16)


def test_the_stage_refuses_a_line_model_without_its_lexical_weights(tmp_path: Path) -> None:
    rules_dir = Path(shutil.copytree(DEFAULT_RULES_DIR, tmp_path / "rules"))
    engine = RulesEngine(load_rules(rules_dir))
    assert engine.lexical is not None and engine.lexical.weights.shape == (1 << engine.lexical.bits,)
    card = json.loads((rules_dir / "models" / "lines.json").read_text(encoding="utf-8"))
    assert card["lexical"]["file"] == "models/lines-lexical.npy" and card["lexical"]["oof_auc"] > 0.8
    (rules_dir / "models" / "lines-lexical.npy").unlink()
    with pytest.raises(CleaningError, match="cannot read the lexical weights"):
        RulesEngine(load_rules(rules_dir))
