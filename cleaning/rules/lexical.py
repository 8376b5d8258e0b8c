"""A line's words, for the line model: a linear score over hashed character n-grams of its two ends.

The other line features describe shape, place and recurrence, never vocabulary, so a sentence of
prose between headings and a call to action of the same shape looked alike to the model. The
wording at a line's ends says much of what it is (`…はこちら`, `※…`, `…ください`, `…しました。`),
so the line is cut to its first and last `cut` characters (joined by a separator) and described by
its character unigrams and bigrams, hashed into 2**bits buckets and L2-normalised. A logistic
regression over them (trained by `cleaning rules train`, out of fold for the line model's own
training rows) gives one number per line, the `lexical` line feature. Only its ends: on whole lines
the score of a long line was its topic, and it helped less on sites never seen.

The stage scores lines with one compiled pass over the code points it has already scanned
(`linescan`), summing the weights of each line's n-grams without building a matrix (the stage takes 4%
longer with the feature, paired runs); training builds the same rows as a sparse matrix for scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from cleaning.errors import CleaningError
from cleaning.rules.linescan import _mix
from cleaning.rules.models import RETRAIN

_UNIGRAM = np.uint64(1 << 43)  # marks a unigram key; a bigram key is (a << 21) | b (code points < 2**21)


@numba.njit(cache=True, nogil=True)
def _sorted_keys(cp, start, length, cut, mask, tokens, keys):  # pragma: no cover - compiled
    """The line's n-gram keys, sorted, in keys[:k]; returns k."""
    if length <= 2 * cut:
        m = length
        for j in range(m):
            tokens[j] = np.uint64(cp[start + j])
    else:
        m = 2 * cut + 1
        for j in range(cut):
            tokens[j] = np.uint64(cp[start + j])
            tokens[cut + 1 + j] = np.uint64(cp[start + length - cut + j])
        tokens[cut] = np.uint64(0)
    k = 0
    for j in range(m):
        keys[k] = _mix(tokens[j] | _UNIGRAM) & mask
        k += 1
    for j in range(m - 1):
        keys[k] = _mix((tokens[j] << np.uint64(21)) | tokens[j + 1]) & mask
        k += 1
    keys[:k] = np.sort(keys[:k])
    return k


@numba.njit(cache=True, nogil=True)
def _counted(cp, start, length, cut, mask, tokens, keys, counts):  # pragma: no cover - compiled
    """The line's distinct n-gram keys in keys[:m] with their counts in counts[:m]; returns m."""
    k = _sorted_keys(cp, start, length, cut, mask, tokens, keys)
    m = 0
    run = 1
    for j in range(1, k + 1):
        if j < k and keys[j] == keys[j - 1]:
            run += 1
            continue
        keys[m] = keys[j - 1]  # m < j: overwrites only keys already counted
        counts[m] = run
        m += 1
        run = 1
    return m


@numba.njit(cache=True, nogil=True)
def _ngrams(cp, starts, lens, rows, cut, mask):  # pragma: no cover - compiled
    n = rows.size
    cap = 0
    for i in range(n):
        cap += 2 * min(lens[rows[i]], 2 * cut + 1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices = np.empty(cap, dtype=np.int64)
    values = np.empty(cap, dtype=np.float32)
    tokens = np.empty(2 * cut + 1, dtype=np.uint64)
    keys = np.empty(4 * cut + 2, dtype=np.uint64)
    counts = np.empty(4 * cut + 2, dtype=np.float64)
    pos = 0
    for i in range(n):
        m = _counted(cp, starts[rows[i]], lens[rows[i]], cut, mask, tokens, keys, counts)
        norm = 0.0
        for j in range(m):
            norm += counts[j] * counts[j]
        for j in range(m):
            indices[pos] = np.int64(keys[j])
            values[pos] = counts[j] / np.sqrt(norm)
            pos += 1
        indptr[i + 1] = pos
    return indptr, indices[:pos], values[:pos]


@numba.njit(cache=True, nogil=True)
def _scores(cp, starts, lens, rows, cut, mask, weights, intercept):  # pragma: no cover - compiled
    """weights . (the line's L2-normalised n-gram counts) + intercept, for each line of rows."""
    out = np.empty(rows.size, dtype=np.float32)
    tokens = np.empty(2 * cut + 1, dtype=np.uint64)
    keys = np.empty(4 * cut + 2, dtype=np.uint64)
    counts = np.empty(4 * cut + 2, dtype=np.float64)
    for i in range(rows.size):
        m = _counted(cp, starts[rows[i]], lens[rows[i]], cut, mask, tokens, keys, counts)
        dot = 0.0
        norm = 0.0
        for j in range(m):
            dot += weights[keys[j]] * counts[j]
            norm += counts[j] * counts[j]
        out[i] = intercept + (dot / np.sqrt(norm) if m else 0.0)
    return out


def ngram_matrix(cp: np.ndarray, starts: np.ndarray, lens: np.ndarray, rows: np.ndarray, cut: int, bits: int) -> Any:
    """One L2-normalised row of hashed n-gram counts per line in `rows` (indices into the scanned
    lines `cp`/`starts`/`lens` of `linescan.codepoints`), as a scipy CSR matrix (training only)."""
    import scipy.sparse as sp

    rows = np.asarray(rows, dtype=np.int64)
    mask = np.uint64((1 << bits) - 1)
    indptr, indices, values = _ngrams(cp, starts, lens, rows, int(cut), mask)
    return sp.csr_matrix((values, indices, indptr), shape=(rows.size, 1 << bits))


@dataclass
class LexicalModel:
    """Weights of the hashed n-grams and an intercept: the score is a log-odds of boilerplate."""

    weights: np.ndarray  # float32, 2**bits
    intercept: float
    cut: int
    bits: int

    def score(self, cp: np.ndarray, starts: np.ndarray, lens: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.empty(0, dtype=np.float32)
        mask = np.uint64((1 << self.bits) - 1)
        rows = np.asarray(rows, dtype=np.int64)
        return _scores(cp, starts, lens, rows, self.cut, mask, self.weights, np.float64(self.intercept))

    def save(self, path: Path) -> None:
        """The weights (`.npy`, written under a temporary name and renamed); `describe()` goes into
        the line model's card."""
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, self.weights.astype(np.float32))
        tmp.replace(path)

    def describe(self) -> dict[str, float | int]:
        return {"intercept": float(self.intercept), "cut": self.cut, "bits": self.bits}

    @classmethod
    def load(cls, path: Path, card: dict) -> LexicalModel:
        """The weights file and the `lexical` entry of the line model's card."""
        spec = card.get("lexical")
        if not isinstance(spec, dict) or not {"intercept", "cut", "bits"} <= set(spec):
            raise CleaningError(f"the line model's card has no lexical entry for {path}: {RETRAIN}")
        try:
            weights = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CleaningError(f"{path}: cannot read the lexical weights ({exc}); {RETRAIN}") from exc
        if weights.shape != (1 << int(spec["bits"]),):
            raise CleaningError(f"{path}: {weights.shape[0]} weights, the card says 2**{spec['bits']}; {RETRAIN}")
        return cls(weights.astype(np.float32), float(spec["intercept"]), int(spec["cut"]), int(spec["bits"]))


def fit_lexical(x: Any, y: np.ndarray, w: np.ndarray, cut: int, bits: int, c: float = 1.0) -> LexicalModel:
    """Logistic regression (L2, strength 1/c) of y on the n-gram rows `x`, weighted by `w`."""
    from sklearn.linear_model import LogisticRegression

    if len(set(y.tolist())) < 2:
        raise CleaningError("the lexical line score needs both boilerplate and content lines to learn from")
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x, y, sample_weight=w)
    return LexicalModel(model.coef_[0].astype(np.float32), float(model.intercept_[0]), cut, bits)
