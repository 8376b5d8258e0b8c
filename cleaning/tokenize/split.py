"""Held-out splits: a salted hash of the document id puts it in train, valid or test, on any worker."""

from __future__ import annotations

import xxhash

SPLITS = ("train", "valid", "test")


def split_of(doc_id: str, valid: float, test: float, salt: str = "split") -> str:
    """`valid` and `test` are shares (0..1); the same id always lands in the same split."""
    draw = xxhash.xxh3_64_intdigest(f"{salt}\x1f{doc_id}".encode()) / 2.0**64
    if draw < valid:
        return "valid"
    if draw < valid + test:
        return "test"
    return "train"


def heldout_rates(docs: int, valid: float, test: float, min_docs: int, cap: float = 0.1) -> tuple[float, float]:
    """Shares to use for a corpus of `docs`: at least `min_docs` expected per held-out split
    (so a small corpus still gets a validation set), never more than `cap` of the corpus."""

    def rate(share: float) -> float:
        if share <= 0:
            return 0.0
        return min(cap, max(share, min_docs / max(docs, 1)))

    return rate(valid), rate(test)
