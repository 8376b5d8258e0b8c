"""fastText good/noise model: tokenisation for Japanese, training, and P(noise) per document.

Text becomes characters (`cleaning.fasttext_input`); fastText's word n-grams then see character
n-grams. Long documents are cut at line boundaries into chunks of about the length of an
annotation, each chunk is scored, and the document's P(noise) is the length-weighted mean of its
chunks: the share of its text that looks like noise, which a long article with a small ad block
does not exceed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.errors import CleaningError
from cleaning.fasttext_input import tokens, with_lr_backoff

NOISE = "__label__noise"
GOOD = "__label__good"


@dataclass(frozen=True)
class TrainParams:
    """fastText supervised hyper-parameters; `representation` is how text becomes tokens."""

    representation: str = "chars"  # chars | char_bigrams
    word_ngrams: int = 2  # 1 diverges ("Encountered NaN") on most data here; n-grams of 2-3 carry the signal
    dim: int = 50
    epoch: int = 25
    lr: float = 0.5  # 0.1 under-trains n-gram models at 25 epochs (CV accuracy ~0.6 on real labels)
    bucket: int = 200_000  # fastText's default 2M makes an 800 MB model; per-worker memory matters more
    min_count: int = 1
    seed: int = 1  # fastText diverges ("Encountered NaN") with seed 0 on these data

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def train(texts: list[str], labels: list[str], params: TrainParams) -> Any:
    """Train a supervised model. One thread, fixed seed: the same data gives the same model."""
    import fasttext

    fd, path = tempfile.mkstemp(suffix=".txt", prefix="quality-train-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for text, label in zip(texts, labels, strict=True):
                f.write(f"__label__{label} {tokens(text, params.representation)}\n")
        return with_lr_backoff(
            lambda lr: fasttext.train_supervised(
                path,
                wordNgrams=params.word_ngrams,
                dim=params.dim,
                epoch=params.epoch,
                lr=lr,
                minCount=params.min_count,
                bucket=params.bucket,
                seed=params.seed,
                thread=1,
                verbose=0,
            ),
            params.lr,
            "fastText training (check the annotations)",
        )
    finally:
        os.unlink(path)


def p_noise(model: Any, lines: list[str]) -> np.ndarray:
    """P(noise) for tokenised lines, read from the noise label explicitly (never the top label)."""
    if not lines:
        return np.empty(0)
    labels, probs = model.predict(lines, k=2)
    out = np.empty(len(lines))
    for i, (names, values) in enumerate(zip(labels, probs, strict=True)):
        scores = dict(zip(names, values, strict=True))
        out[i] = min(1.0, max(0.0, float(scores.get(NOISE, 1.0 - scores.get(GOOD, 0.0)))))
    return out


def chunks(text: str, chunk_chars: int) -> list[str]:
    """Cut a document at line boundaries into pieces of about chunk_chars (a long line stays whole)."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        if current and size + len(line) > chunk_chars:
            pieces.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        pieces.append("\n".join(current))
    return [p for p in pieces if p.strip()] or [text]


def score_documents(model: Any, texts: list[str], representation: str, chunk_chars: int) -> np.ndarray:
    """Length-weighted mean P(noise) over each document's chunks, scored in one batch."""
    owners: list[int] = []
    lines: list[str] = []
    weights: list[int] = []
    for i, text in enumerate(texts):
        for piece in chunks(text, chunk_chars):
            owners.append(i)
            lines.append(tokens(piece, representation))
            weights.append(max(1, len(piece)))
    probs = p_noise(model, lines)
    w = np.asarray(weights, dtype=float)
    idx = np.asarray(owners, dtype=int)
    total = np.bincount(idx, weights=w * probs, minlength=len(texts))
    norm = np.bincount(idx, weights=w, minlength=len(texts))
    return np.divide(total, norm, out=np.zeros(len(texts)), where=norm > 0)


def load(path: Path) -> Any:
    import fasttext

    if not path.is_file():
        raise CleaningError(f"quality model not found: {path} (train one with `cleaning quality train`)")
    return fasttext.load_model(str(path))
