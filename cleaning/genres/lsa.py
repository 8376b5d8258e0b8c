"""Document vectors by LSA over sentencepiece pieces and hashed piece bigrams (genres.method: lsa).

fastText word vectors averaged over a document top out at purity ~0.78 on livedoor's 9
categories; TF-IDF of the same pieces plus their bigrams, projected onto 100 SVD directions
fitted on the training sample, reaches ~0.81 and trains in seconds (bench/genres_eval.py).
A document's vector is one sparse product per batch: (1 + ln tf) · idf of its unigram and bigram
columns times the SVD components, L2-normalised.
"""

from __future__ import annotations

import itertools
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cleaning.errors import CleaningError
from cleaning.fasttext_input import load_pieces

if TYPE_CHECKING:
    import scipy.sparse as sp

BITS = 15  # bigram buckets: 2^bits columns after the unigram ones (bench/results/genres-eval-*.md)
_MIX = 16411  # bigram (a, b) -> bucket ((a · _MIX + b) · _GOLDEN) mod 2^bits
_GOLDEN = 2654435761


class Counts:
    """Unigram and bigram-bucket count matrices of a batch of texts (rows = texts)."""

    def __init__(self, pieces: object, texts: list[str], bits: int = BITS) -> None:
        import scipy.sparse as sp  # here, not at the top: every process that loads the stages imports this module

        flat_texts = [" ".join(unicodedata.normalize("NFKC", t).split()) for t in texts]  # as the training sample
        ids = pieces.encode(flat_texts, out_type=int)  # type: ignore[attr-defined]
        n, vocab = len(ids), pieces.get_piece_size()  # type: ignore[attr-defined]
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=n)
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=starts[1:])
        self.unigrams = sp.csr_matrix((np.ones(len(flat), np.float32), flat, starts), shape=(n, vocab))
        buckets = ((flat[:-1] * _MIX + flat[1:]) * _GOLDEN) & ((1 << bits) - 1)
        inside = np.ones(len(buckets), bool)  # bigram j spans tokens j, j+1: not across two texts
        ends = starts[1:][lengths > 0] - 1
        inside[ends[ends < len(buckets)]] = False
        bigram_starts = np.zeros(n + 1, np.int64)
        np.cumsum(np.maximum(lengths - 1, 0), out=bigram_starts[1:])
        ones = np.ones(int(bigram_starts[-1]), np.float32)
        self.bigrams = sp.csr_matrix((ones, buckets[inside], bigram_starts), shape=(n, 1 << bits))
        self.unigrams.sum_duplicates()
        self.bigrams.sum_duplicates()
        self.tokens = lengths

    def weighted(self, idf: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(1 + ln tf) · idf of the unigram columns, then of the bigram columns (idf over both, in order)."""
        vocab = self.unigrams.shape[1]
        out = []
        for matrix, offset in ((self.unigrams, 0), (self.bigrams, vocab)):
            weighted = matrix.copy()
            weighted.data = (1 + np.log(weighted.data)) * idf[offset + weighted.indices]
            out.append(weighted)
        return out[0], out[1]


def fit(pieces_model: Path, sample: Path, out: Path, dim: int, seed: int, bits: int = BITS) -> dict[str, int]:
    """Fit idf and the SVD directions on a sample (one document per line); saves `out` (.npz)."""
    import scipy.sparse as sp
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    pieces = load_pieces(str(pieces_model))
    texts = [line for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(texts) < 3:
        raise CleaningError(f"genres: {len(texts)} documents in the training sample; LSA needs at least 3")
    counts = Counts(pieces, texts, bits)
    n = len(texts)
    df = np.concatenate([np.bincount(m.indices, minlength=m.shape[1]) for m in (counts.unigrams, counts.bigrams)])
    idf = (np.log((n + 1) / (df + 1)) + 1).astype(np.float32)
    matrix = normalize(sp.hstack(counts.weighted(idf), format="csr"))
    dims = max(2, min(dim, n - 1, matrix.shape[1] - 1))
    svd = TruncatedSVD(dims, random_state=seed).fit(matrix)
    components = np.ascontiguousarray(svd.components_.T.astype(np.float32))
    np.savez(out, idf=idf, components=components, bits=np.int64(bits))
    return {"documents": n, "dims": dims, "bits": bits}


class LsaEmbedder:
    """Turns texts into L2-normalised LSA vectors; same interface as `embeddings.Embedder`."""

    def __init__(self, model: Path, pieces: Path) -> None:
        if not model.is_file():
            raise CleaningError(f"genres: LSA model not found: {model}")
        with np.load(model) as data:
            self.idf, self.components, self.bits = data["idf"], data["components"], int(data["bits"])
        self.pieces = load_pieces(str(pieces))
        self.dim = self.components.shape[1]

    def embed(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors (n × dim, float32, rows L2-normalised) and the count of pieces per text."""
        counts = Counts(self.pieces, texts, self.bits)
        unigrams, bigrams = counts.weighted(self.idf)
        vocab = unigrams.shape[1]
        vectors = np.asarray(unigrams @ self.components[:vocab], dtype=np.float32)
        vectors += bigrams @ self.components[vocab:]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.divide(vectors, norms, out=vectors, where=norms > 0)
        return vectors, counts.tokens
