"""The quality model: fastText over chunks of the text, and a calibrated combiner over the document.

Text becomes characters (`cleaning.fasttext_input`); fastText's word n-grams then see character
n-grams. Long documents are cut at line boundaries into chunks of about the length of an
annotation, each chunk is scored, and the document's P(noise) is the length-weighted mean of its
chunks: the share of its text that looks like noise, which a long article with a small ad block
does not exceed. The combiner (a logistic regression over that mean, the worst chunk and the
document's shape, `cleaning.quality.features`) turns it into a calibrated P(noise) for the whole
document.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.childprocess import call, check_saved
from cleaning.errors import CleaningError
from cleaning.fasttext_input import tokens, with_lr_backoff

NOISE = "__label__noise"
GOOD = "__label__good"


@dataclass(frozen=True)
class TrainParams:
    """fastText supervised hyper-parameters; `representation` is how text becomes tokens."""

    representation: str = "chars"  # chars | char_bigrams
    word_ngrams: int = 2  # 1 diverges ("Encountered NaN") on most data here; n-grams of 2-3 carry the signal
    dim: int = 16  # 16 and 50 measure the same on labelled pages; 16 with 50k buckets is a 3.4 MB model
    epoch: int = 25
    lr: float = 0.5  # 0.1 under-trains n-gram models at 25 epochs (CV accuracy ~0.6 on real labels)
    bucket: int = 50_000  # fastText's default 2M makes an 800 MB model; per-worker memory matters more
    min_count: int = 1
    seed: int = 1  # fastText diverges ("Encountered NaN") with seed 0 on these data

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def train(texts: list[str], labels: list[str], params: TrainParams) -> Any:
    """Train a supervised model in a fresh process (one thread, fixed seed).

    fastText's training result depends on the state of the process it runs in (the same data gave
    different bytes, and in a long-running process sometimes "Encountered NaN" at every learning
    rate); in a fresh process it is reproducible to the byte. Texts without a token are left out:
    fastText averages over no input and diverges."""
    import fasttext

    workdir = tempfile.mkdtemp(prefix="quality-train-")
    data, out = os.path.join(workdir, "train.txt"), os.path.join(workdir, "model.bin")
    try:
        with open(data, "w", encoding="utf-8") as f:
            for text, label in zip(texts, labels, strict=True):
                line = tokens(text, params.representation)
                if line:
                    f.write(f"__label__{label} {line}\n")
        options = {
            "wordNgrams": params.word_ngrams,
            "dim": params.dim,
            "epoch": params.epoch,
            "minCount": params.min_count,
            "bucket": params.bucket,
            "seed": params.seed,
        }
        with_lr_backoff(lambda lr: _train_in_fresh_process(data, out, {**options, "lr": lr}), params.lr,
                        "fastText training (check the annotations)")  # fmt: skip
        return fasttext.load_model(out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _train_in_fresh_process(data: str, out: str, options: dict[str, Any]) -> None:
    _in_fresh_process("_train_file", data, out, options)


def quantize(path: Path) -> None:
    """Shrink a trained model in place (product quantisation: ~7x smaller, scores within ~0.01 AUC on
    labelled pages), so a model can ship in git. Also in a fresh process, for the reason above."""
    _in_fresh_process("_quantize_file", str(path))


def _in_fresh_process(function: str, *args: Any) -> None:
    """Call a function of this module in a plain subprocess (not multiprocessing, which would re-run a
    caller's script)."""
    call(f"cleaning.quality.model:{function}", *args, what="fastText quality training")


def _train_file(data: str, out: str, options: dict[str, Any]) -> None:
    import fasttext

    fasttext.train_supervised(data, thread=1, verbose=0, **options).save_model(out)
    check_saved(Path(out), fasttext.load_model)


def _quantize_file(path: str) -> None:
    import fasttext

    model = fasttext.load_model(path)
    model.quantize(dsub=2, qnorm=False)
    model.save_model(path + ".tmp")
    check_saved(Path(path + ".tmp"), fasttext.load_model)
    os.replace(path + ".tmp", path)


def p_noise(model: Any, lines: list[str]) -> np.ndarray:
    """P(noise) for tokenised lines, read from the noise label explicitly (never the top label).
    A line without tokens is noise (1.0): fastText cannot score it ("Encountered NaN")."""
    out = np.ones(len(lines))
    scored = [i for i, line in enumerate(lines) if line]
    if not scored:
        return out
    labels, probs = model.predict([lines[i] for i in scored], k=2)
    for i, names, values in zip(scored, labels, probs, strict=True):
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


def chunk_scores(model: Any, texts: list[str], representation: str, chunk_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """Per document, the length-weighted mean and the maximum P(noise) of its chunks, scored in one batch."""
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
    mean = np.divide(total, norm, out=np.zeros(len(texts)), where=norm > 0)
    top = np.zeros(len(texts))
    np.maximum.at(top, idx, probs)
    return mean, top


def score_documents(model: Any, texts: list[str], representation: str, chunk_chars: int) -> np.ndarray:
    """fastText alone: the length-weighted mean P(noise) of each document's chunks."""
    return chunk_scores(model, texts, representation, chunk_chars)[0]


@dataclass(frozen=True)
class Combiner:
    """Logistic regression over the document features (standardised): the calibrated P(noise).

    Stored as numbers in the model card, so the card says what the model weighs and a retrain on
    the same data writes the same bytes."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))

    def to_json(self) -> dict[str, Any]:
        return {
            "intercept": round(self.intercept, 6),
            "features": [
                {"name": n, "mean": round(m, 6), "scale": round(s, 6), "coef": round(c, 6)}
                for n, m, s, c in zip(self.names, self.mean, self.scale, self.coef, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Combiner:
        f = data["features"]
        return cls(
            tuple(x["name"] for x in f),
            tuple(float(x["mean"]) for x in f),
            tuple(float(x["scale"]) for x in f),
            tuple(float(x["coef"]) for x in f),
            float(data["intercept"]),
        )


def fit_combiner(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], c: float = 1.0) -> Combiner:
    """Standardise, then fit an L2 logistic regression (lbfgs: deterministic)."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    # features rounded as stored, so the model scores exactly as it will be loaded
    mean, scale = np.round(mean, 6), np.round(scale, 6)
    lr = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    coef = np.round(lr.coef_[0], 6)
    return Combiner(names, tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, coef)),
                    round(float(lr.intercept_[0]), 6))  # fmt: skip


class QualityModel:
    """fastText over chunks, then the combiner over the document features: P(noise) per document."""

    def __init__(self, fasttext_model: Any, card: dict[str, Any]) -> None:
        self.fasttext = fasttext_model
        self.representation = card["params"]["representation"]
        self.chunk_chars = int(card["chunk_chars"])
        self.combiner = Combiner.from_json(card["combiner"]) if card.get("combiner") else None
        self.threshold = float(card["threshold"])

    @classmethod
    def load(cls, path: Path) -> QualityModel:
        import json

        card_path = path.with_suffix(".card.json")
        if not card_path.is_file():
            raise CleaningError(f"model card not found: {card_path} (train with `cleaning quality train`)")
        return cls(load(path), json.loads(card_path.read_text(encoding="utf-8")))

    def score(self, texts: list[str]) -> np.ndarray:
        return score(self.fasttext, self.combiner, texts, self.representation, self.chunk_chars)


def score(ft: Any, combiner: Combiner | None, texts: list[str], representation: str, chunk_chars: int) -> np.ndarray:
    """P(noise) per document: the combiner over fastText's chunk scores and the document's shape
    (fastText's mean alone without a combiner, as for a card from before it)."""
    from cleaning.quality.features import feature_matrix

    mean, top = chunk_scores(ft, texts, representation, chunk_chars)
    return mean if combiner is None else combiner.predict(feature_matrix(texts, mean, top))


def load(path: Path) -> Any:
    import fasttext

    if not path.is_file():
        raise CleaningError(f"quality model not found: {path} (train one with `cleaning quality train`)")
    return fasttext.load_model(str(path))
