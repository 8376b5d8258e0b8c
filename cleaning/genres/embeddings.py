"""Document vectors from unsupervised fastText trained on the corpus itself.

A document vector is the mean of its tokens' L2-normalised word vectors over the whole document,
then L2-normalised: with `sif_a=0` exactly what fastText's `get_sentence_vector` computes for an
unsupervised model. By default each token is weighted by a / (a + p(token)) ("smooth inverse
frequency", Arora et al. 2017) and the corpus' common direction is removed, which lifts
cluster purity on livedoor news by several points (bench/genres_eval.py). All of it is one
sparse matrix product per batch: token ids are looked up with numpy, not per token in Python.
Tokens are those of `cleaning.fasttext_input`.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.childprocess import call, check_saved
from cleaning.errors import CleaningError
from cleaning.fasttext_input import REPRESENTATIONS, SPACE, load_pieces, with_lr_backoff

_SHIFT = np.uint64(21)  # code points fit in 21 bits: a bigram's key is (first << 21) | second


@dataclass(frozen=True)
class EmbeddingParams:
    """fastText unsupervised settings. No subwords: tokens are already one or two characters."""

    representation: str = "chars"
    model: str = "skipgram"
    dim: int = 100
    epoch: int = 5
    min_count: int = 5
    window: int = 5
    lr: float = 0.05
    threads: int = 1  # one thread is bit-reproducible; more train faster but differ run to run (hogwild)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def train(tokens_file: Path, params: EmbeddingParams, out: Path, seed: int = 0) -> None:
    """Train and save the embedding model; fastText errors become one clear line.

    fastText 0.9 initialises only `threads`/10 of the input matrix and leaves the rest as whatever
    memory held (DenseMatrix::uniform), which makes training nondeterministic and sometimes
    diverge ("Encountered NaN"). Starting from our own seeded initial vectors for every word of
    the vocabulary (`pretrainedVectors`) fixes both: with one thread, training is bit-reproducible.
    """
    if params.representation not in REPRESENTATIONS:
        raise CleaningError(f"unknown representation {params.representation!r}; use {' or '.join(REPRESENTATIONS)}")
    if tokens_file.stat().st_size == 0:
        raise CleaningError("genres: no text to train embeddings on (every document was removed upstream?)")
    init = tokens_file.with_suffix(".init.vec")
    words = write_initial_vectors(tokens_file, init, params.dim, params.min_count, seed)
    if words < 2:
        raise CleaningError(f"genres: the training sample has {words} distinct tokens; lower genres.min_count")
    what = "genres: fastText embedding training"
    with_lr_backoff(
        lambda lr: call(
            "cleaning.genres.embeddings:_train", str(tokens_file), str(init), asdict(params), lr, str(out), what=what
        ),
        params.lr,
        what,
    )
    init.unlink()


def _train(tokens_file: str, init: str, options: dict[str, Any], lr: float, out: str) -> None:
    """In a child process (`cleaning.childprocess`): Ctrl-C is not held up by a long training."""
    import fasttext

    params = EmbeddingParams(**options)
    model = fasttext.train_unsupervised(
        tokens_file,
        model=params.model,
        dim=params.dim,
        epoch=params.epoch,
        lr=lr,
        minCount=params.min_count,
        ws=params.window,
        minn=0,
        maxn=0,
        bucket=0,
        thread=max(1, params.threads),
        pretrainedVectors=init,
        verbose=0,
    )
    model.save_model(out)
    check_saved(Path(out), fasttext.load_model)


def write_initial_vectors(tokens_file: Path, out: Path, dim: int, min_count: int, seed: int) -> int:
    """A .vec file with uniform(±1/dim) vectors, as fastText draws them, for every word it will keep."""
    counts: Counter[str] = Counter()
    lines = 0
    with tokens_file.open(encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
            lines += 1
    words = sorted(w for w, n in counts.items() if n >= min_count)
    words.append("</s>")  # fastText's end-of-line token
    rng = np.random.default_rng(seed)
    vectors = rng.uniform(-1 / dim, 1 / dim, size=(len(words), dim)).astype(np.float32)
    with out.open("w", encoding="utf-8") as f:
        f.write(f"{len(words)} {dim}\n")
        for word, vector in zip(words, vectors, strict=True):
            f.write(word + " " + " ".join(f"{x:.8f}" for x in vector) + "\n")
    return len(words) - 1


class Embedder:
    """Turns texts into L2-normalised document vectors with a trained embedding model."""

    def __init__(
        self,
        model_path: Path,
        representation: str,
        sif_a: float = 0.0,
        common: np.ndarray | None = None,
        pieces: Path | None = None,
    ) -> None:
        import fasttext

        self.pieces = load_pieces(str(pieces)) if representation == "pieces" and pieces else None
        if representation == "pieces" and self.pieces is None:
            raise CleaningError("genres: the pieces representation needs its sentencepiece model")

        if not model_path.is_file():
            raise CleaningError(f"genres: embedding model not found: {model_path}")
        model = fasttext.load_model(str(model_path))
        words, freq = model.get_words(include_freq=True)
        matrix = np.asarray(model.get_input_matrix()[: len(words)], dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        if sif_a > 0:  # weight a / (a + p(w)): frequent tokens (particles, punctuation) count less
            p = np.asarray(freq, dtype=np.float64) / max(1, int(np.sum(freq)))
            unit *= (sif_a / (sif_a + p)).astype(np.float32)[:, None]
        self.common = None if common is None else np.asarray(common, dtype=np.float32)
        keys = np.array([_word_key(w, representation, self.pieces) for w in words], dtype=np.uint64)
        usable = (keys != _NO_KEY) & (norms[:, 0] > 0)
        order = np.argsort(keys[usable], kind="stable")
        self.keys = keys[usable][order]
        self.unit = unit[usable][order]
        self.representation = representation
        self.dim = matrix.shape[1]
        self._row: np.ndarray | None = None  # dense key -> row table where keys are small integers
        if representation in ("chars", "pieces"):
            size = 0x110000 if representation == "chars" else self.pieces.get_piece_size()
            self._row = np.full(size, -1, dtype=np.int64)
            self._row[self.keys.astype(np.int64)] = np.arange(len(self.keys))

    def embed(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors (n × dim, float32, rows L2-normalised) and the count of known tokens per text."""
        import scipy.sparse as sp  # here, not at the top: every process that loads the stages imports this module

        keys, owner = self._token_keys(texts)
        if self._row is not None:  # one table lookup per token
            pos = self._row[keys.astype(np.int64)]
            known = pos >= 0
        else:
            pos = np.searchsorted(self.keys, keys)
            pos[pos == len(self.keys)] = 0
            known = self.keys[pos] == keys if len(self.keys) else np.zeros(len(keys), bool)
        pos, owner = pos[known], owner[known]
        counts = np.bincount(owner, minlength=len(texts))
        indptr = np.concatenate([[0], np.cumsum(counts)])
        bag = sp.csr_matrix((np.ones(len(pos), np.float32), pos, indptr), shape=(len(texts), len(self.keys)))
        vectors = np.asarray(bag @ self.unit, dtype=np.float32)
        if self.common is not None:  # remove the direction every document shares
            vectors -= np.outer(vectors @ self.common, self.common)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.divide(vectors, norms, out=vectors, where=norms > 0)
        return vectors, counts

    def _token_keys(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every token's key and the index of its text, for all texts at once."""
        parts = [unicodedata.normalize("NFKC", t).strip() for t in texts]
        if self.pieces is not None:
            ids = self.pieces.encode(parts, out_type=int)
            owner = np.repeat(np.arange(len(texts)), [len(i) for i in ids])
            flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.uint64, count=len(owner))
            return flat, owner
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        codes = np.frombuffer("".join(parts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        owner = np.repeat(np.arange(len(texts)), lengths)
        small = codes < len(_SPACE_TABLE)
        codes[small & _SPACE_TABLE[np.where(small, codes, 0)]] = ord(SPACE)
        if self.representation == "chars":
            return codes, owner
        same = owner[:-1] == owner[1:]  # bigrams never span two texts
        bigrams = ((codes[:-1] << _SHIFT) | codes[1:])[same]
        single = np.flatnonzero(lengths == 1)  # a one-character text is that character
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        keys = np.concatenate([bigrams, codes[starts[single]]])
        owners = np.concatenate([owner[:-1][same], single])
        order = np.argsort(owners, kind="stable")
        return keys[order], owners[order]


_NO_KEY = np.uint64(2**64 - 1)
_SPACE_TABLE = np.array([chr(c).isspace() for c in range(0x3100)], dtype=bool)  # every Unicode space is below


def _word_key(word: str, representation: str, pieces: Any = None) -> int:
    """A vocabulary word's numeric key, or _NO_KEY for words the representation never produces (</s>)."""
    if representation == "pieces":  # the bare word-boundary piece carries no meaning: like </s>, skip it
        piece = pieces.piece_to_id(word)
        return piece if pieces.id_to_piece(piece) == word and word != SPACE else int(_NO_KEY)
    if representation == "chars" and len(word) == 1:
        return ord(word)
    if representation == "char_bigrams" and len(word) == 2:
        return (ord(word[0]) << 21) | ord(word[1])
    if representation == "char_bigrams" and len(word) == 1:
        return ord(word)  # a one-character document is tokenised as that character
    return int(_NO_KEY)


def common_direction(vectors: np.ndarray) -> np.ndarray:
    """The first principal direction (uncentred) of a sample of document vectors, unit length."""
    gram = vectors.T.astype(np.float64) @ vectors.astype(np.float64)
    _, eigenvectors = np.linalg.eigh(gram)
    direction = eigenvectors[:, -1]
    return (direction * np.sign(direction.sum() or 1.0)).astype(np.float32)
