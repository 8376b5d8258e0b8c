"""What the quality model looks at besides fastText: the shape of the document.

fastText sees character n-grams of ~300-character chunks and cannot tell a page of prose from a
listing whose every chunk sounds fine. These features say how the whole document is built: how
long it is and its lines are, which scripts it uses, whether its lines end like sentences, how
much it repeats itself. They are the document metrics the rules stage already uses
(`cleaning.rules.metrics`), plus the spread of fastText's chunk scores (mean and worst chunk).
"""

from __future__ import annotations

import math

import numpy as np

from cleaning.rules.metrics import DocView

METRICS = (
    "hiragana_ratio", "katakana_ratio", "japanese_ratio", "symbol_ratio", "sentence_end_ratio",
    "sentence_end_char_ratio", "ellipsis_line_ratio", "dup_line_ratio", "dup_5gram_ratio", "top_3gram_ratio",
)  # fmt: skip
SHAPE = ("log_chars", "log_lines", "log_line_chars", "log_sentence_chars", "digit_ratio", "latin_ratio")
FASTTEXT = ("fasttext_mean", "fasttext_max")
NAMES = (*FASTTEXT, *SHAPE, *METRICS)


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(q / (1 - q))


def shape_row(text: str) -> list[float]:
    """The SHAPE and METRICS features of one document (fastText's are added by the caller)."""
    view = DocView(text)
    lines = [line for line in view.lines if line.strip()]
    cp = view.codepoints
    n = max(1, cp.size)
    digits = int(((cp >= 0x30) & (cp <= 0x39)).sum())
    latin = int((((cp | 0x20) >= 0x61) & ((cp | 0x20) <= 0x7A)).sum())
    row = [
        math.log1p(len(text)),
        math.log1p(len(lines)),
        math.log1p(len(text) / max(1, len(lines))),
        math.log1p(view.value("mean_sentence_chars")),
        digits / n,
        latin / n,
    ]
    row += [view.value(name) if cp.size else 0.0 for name in METRICS]
    return row


def feature_matrix(texts: list[str], chunk_mean: np.ndarray, chunk_max: np.ndarray) -> np.ndarray:
    """One row per document, columns named by NAMES."""
    shape = np.array([shape_row(t) for t in texts], dtype=np.float64).reshape(len(texts), len(SHAPE) + len(METRICS))
    return np.column_stack([logit(chunk_mean), logit(chunk_max), shape])
