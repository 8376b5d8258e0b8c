"""How Japanese text becomes fastText input, shared by the quality classifier and the genre embeddings.

Japanese has no spaces, so text becomes space-separated tokens: characters (whitespace becomes
"▁"), overlapping character bigrams, or sentencepiece pieces of a model trained on the corpus. One
definition for every stage: a model trained on one representation must be fed the same one.
Each stage picks its representation by measurement (bench/quality_eval.py, bench/genres_eval.py).
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from cleaning.childprocess import ChildFailed, call, check_saved
from cleaning.errors import CleaningError
from cleaning.spm_paths import drop_training_paths

T = TypeVar("T")

REPRESENTATIONS = ("chars", "char_bigrams", "pieces")
SPACE = "▁"


def tokens(text: str, representation: str = "chars", pieces: Any = None) -> str:
    """One fastText input line: NFKC, whitespace as ▁, tokens joined by spaces."""
    if representation == "pieces":
        if pieces is None:
            raise CleaningError("the pieces representation needs a sentencepiece model")
        return " ".join(pieces.encode(unicodedata.normalize("NFKC", text).strip(), out_type=str))
    chars = [SPACE if c.isspace() else c for c in unicodedata.normalize("NFKC", text).strip()]
    if representation == "chars":
        return " ".join(chars)
    if representation == "char_bigrams":
        return " ".join(a + b for a, b in itertools.pairwise(chars)) or " ".join(chars)
    raise CleaningError(f"unknown representation {representation!r}; use {' or '.join(REPRESENTATIONS)}")


def train_pieces(text_file: Path, prefix: Path, vocab_size: int, threads: int = 1) -> Path:
    """Train a unigram sentencepiece model on one document per line; returns the .model path.
    Runs in a child process, so Ctrl-C is not held up by the training (`cleaning.childprocess`)."""
    call(
        "cleaning.fasttext_input:_train_pieces", str(text_file), str(prefix), vocab_size, threads,
        what="sentencepiece training",
    )  # fmt: skip
    return prefix.with_suffix(".model")


def _train_pieces(text_file: str, prefix_name: str, vocab_size: int, threads: int) -> None:
    import sentencepiece as spm

    prefix = Path(prefix_name)
    try:
        spm.SentencePieceTrainer.train(
            input=str(text_file),
            model_prefix=str(prefix),
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=0.9995,
            hard_vocab_limit=False,  # a small corpus gets a smaller vocabulary instead of an error
            max_sentence_length=1 << 16,
            num_threads=max(1, threads),
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise CleaningError(f"sentencepiece training failed: {str(exc).splitlines()[0]}") from exc
    drop_training_paths(prefix.with_suffix(".model"))
    check_saved(prefix.with_suffix(".model"), lambda path: spm.SentencePieceProcessor(model_file=path))


def load_pieces(path: str) -> Any:
    """One model per process and file; a model written anew to the same path is loaded again."""
    if not Path(path).is_file():
        raise CleaningError(f"sentencepiece model not found: {path}")
    st = Path(path).stat()
    return _load_pieces(path, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=4)
def _load_pieces(path: str, size: int, mtime_ns: int) -> Any:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=path)


def with_lr_backoff(train: Callable[[float], T], lr: float, what: str, tries: int = 4) -> T:
    """Call `train(lr)`, halving lr after each "Encountered NaN" (fastText diverges on some data)."""
    for _ in range(tries):
        try:
            return train(lr)
        except (RuntimeError, ValueError, ChildFailed) as exc:
            error, lr = exc, lr / 2
    raise CleaningError(f"{what} failed ({error}) even at lr={lr * 2:g}")
