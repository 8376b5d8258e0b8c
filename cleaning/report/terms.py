"""Distinctive terms per cluster: class-based TF-IDF (c-TF-IDF) over character n-grams.

Each cluster's sampled text is one "class document"; a term's weight in a cluster is its
frequency there, normalised by the cluster's size, times log(1 + A / f), where f is the term's
frequency over all clusters and A the mean size of a cluster (as BERTopic does); a term must
also be at least 1.5 times as frequent in its cluster as in the whole corpus. Character n-grams
need no Japanese tokenizer; n-grams of only kana endings, digits or punctuation are skipped, and
a term overlapping a better one is not shown twice ("商品一覧" hides "品一覧").

Corpus frequencies are counted in hashed buckets (no vocabulary of every n-gram in memory), and
each cluster's candidates are its own most frequent n-grams, so 10,000 clusters fit in a few
hundred MB.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

TERMS = 8
NGRAMS = (2, 5)
_BUCKETS = 1 << 22
_CANDIDATES = 300  # a cluster's most frequent usable n-grams that are scored
_CONTENT = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf\u30a1-\u30faA-Za-z]")  # kanji, katakana or Latin
_NOISE = re.compile(r"[\s\d\u3000-\u303f\uff01-\uff20\uff3b-\uff40\uff5b-\uff65!-@\[-`{-~]")  # space, digit, punct
_PARTICLES = tuple("をにはがのとでもへやか")  # a term ending in a particle is a phrase fragment
_MIN_LIFT = 1.5  # a term must be this much more frequent in its cluster than in the corpus
_EXTEND = 0.7  # a longer n-gram replaces a shorter one it contains if it has this share of its count


def usable(term: str) -> bool:
    """A readable term: holds a content character, no space/digit/punctuation, no kana at its start."""
    return (
        bool(_CONTENT.search(term))
        and not _NOISE.search(term)
        and not ("\u3041" <= term[0] <= "\u3096")
        and not term.endswith(_PARTICLES)
    )


def ngram_counts(text: str) -> Counter[str]:
    lo, hi = NGRAMS
    return Counter(text[i : i + n] for n in range(lo, hi + 1) for i in range(len(text) - n + 1))


def distinctive_terms(texts: list[str], top: int = TERMS) -> list[list[str]]:
    """The `top` most distinctive n-grams of each text (one text per cluster)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    if not any(texts):
        return [[] for _ in texts]
    common = dict(n_features=_BUCKETS, alternate_sign=False, norm=None, lowercase=False, dtype=np.float32)
    corpus = HashingVectorizer(analyzer="char", ngram_range=NGRAMS, **common)
    freq = np.zeros(_BUCKETS)
    sizes = np.zeros(len(texts))
    for start in range(0, len(texts), 500):  # bounded memory: 500 clusters at a time
        counts = corpus.transform(texts[start : start + 500])
        freq += np.asarray(counts.sum(axis=0)).ravel()
        sizes[start : start + 500] = np.asarray(counts.sum(axis=1)).ravel()
    mean_size, total = sizes.mean(), max(1.0, sizes.sum())
    lookup = HashingVectorizer(analyzer=lambda term: [term], **common)  # the same bucket as in `corpus`
    out = []
    for text, size in zip(texts, sizes, strict=True):
        local = ngram_counts(text)
        ranked = local.most_common()
        candidates = [(t, n) for t, n in ranked if usable(t)][:_CANDIDATES]
        if not candidates:
            out.append([])
            continue
        terms = [t for t, _ in candidates]
        tf = np.array([n for _, n in candidates], dtype=np.float64)
        f = freq[lookup.transform(terms).indices]
        rate = tf / max(size, 1.0)
        scores = rate * np.log1p(mean_size / np.maximum(f, 1.0)) * (rate > _MIN_LIFT * f / total)
        out.append(_choose(terms, tf, scores, ranked, {t: i for i, t in enumerate(local)}, top))
    return out


def _choose(
    terms: list[str],
    tf: np.ndarray,
    scores: np.ndarray,
    ranked: list[tuple[str, int]],
    position: dict[str, int],
    top: int,
) -> list[str]:
    """Best-scoring terms, each extended to its longest form, skipping overlaps with those chosen."""
    chosen: list[str] = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] <= 0:
            break
        term = _longest_extension(terms[i], tf[i], ranked, position)
        if any(_overlap(term, c) for c in chosen):
            continue
        chosen.append(term)
        if len(chosen) == top:
            break
    return chosen


def _longest_extension(term: str, count: float, ranked: list[tuple[str, int]], position: dict[str, int]) -> str:
    """The longest usable n-gram of the cluster that contains `term` almost every time it occurs.

    `ranked` is by count, descending, so only its head (counts >= _EXTEND × count) is looked at;
    among equally long n-grams the one first seen in the text wins.
    """
    best, best_key = term, (len(term), 0)
    for other, n in ranked:
        if n < _EXTEND * count:
            break
        key = (len(other), -position[other])
        if len(other) > len(term) and key > best_key and term in other and usable(other):
            best, best_key = other, key
    return best


def _overlap(a: str, b: str) -> bool:
    """One contains the other, or they share three characters in a row (フェイクグ / ェイクグリ)."""
    if a in b or b in a:
        return True
    return bool({a[i : i + 3] for i in range(len(a) - 2)} & {b[i : i + 3] for i in range(len(b) - 2)})
