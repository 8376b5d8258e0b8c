"""Vectorised MinHash signatures with datasketch's semantics, and LSH band keys.

A shingle is `ngram` consecutive characters of the text with whitespace removed. Its 32-bit hash
(`hashfunc`, a polynomial over code points folded to 32 bits) goes through datasketch 2.0's default
"affine32" scheme: MurmurHash3's finaliser, then a·h + b mod 2³² per permutation, a and b drawn
exactly as datasketch draws them from `seed`. So `signature(text)` equals
`datasketch.MinHash(num_perm, seed, hashfunc=hashfunc).update_batch(shingles(text))` bit for bit
(tested), and signatures convert to `MinHash`/`LeanMinHash`. The hot loop is numpy over blocks of
shingles × permutations (~19 M chars/s per core here, against ~1 M for datasketch's update_batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

EMPTY = np.uint32(0xFFFFFFFF)  # datasketch's value for "no shingle seen"
_POLY = np.uint64(0x9E3779B97F4A7C15)
_BLOCK = 8192  # shingles per block of one text: block × num_perm uint32 stays in cache
_BATCH = 1 << 16  # shingles of several texts processed together


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (datasketch applies it before its permutations)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def strip(text: str) -> str:
    """The text shingles are taken from: all whitespace removed."""
    return "".join(text.split())


def shingle_hashes(text: str, ngram: int) -> np.ndarray:
    """The 32-bit hash of every shingle of `text` (already stripped), in order."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(codes) - ngram + 1
    if n <= 0:
        return np.empty(0, np.uint32)
    h = np.zeros(n, np.uint64)
    for i in range(ngram):
        h = h * _POLY + codes[i : i + n]
    return (h ^ (h >> np.uint64(32))).astype(np.uint32)


def hashfunc(shingle: str) -> int:
    """One shingle's hash, for datasketch: `MinHash(hashfunc=hashfunc)` then matches `signature`."""
    return int(shingle_hashes(shingle, len(shingle))[0])


def shingles(text: str, ngram: int) -> list[str]:
    text = strip(text)
    return [text[i : i + ngram] for i in range(len(text) - ngram + 1)]


@dataclass(frozen=True)
class MinHasher:
    num_perm: int = 128
    ngram: int = 5
    seed: int = 1

    @cached_property
    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        """datasketch's affine32 parameters: odd a and any b, from RandomState(seed), in its order."""
        gen = np.random.RandomState(self.seed)
        a = gen.randint(0, 1 << 31, self.num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, self.num_perm, dtype=np.uint64).astype(np.uint32)
        return a, b

    def signature(self, text: str, buffer: np.ndarray | None = None) -> np.ndarray:
        """The signature of one text (whitespace is removed here)."""
        a, b = self.permutations
        h = _fmix32(shingle_hashes(strip(text), self.ngram))
        sig = np.full(self.num_perm, EMPTY, np.uint32)
        if buffer is None:
            buffer = np.empty((_BLOCK, self.num_perm), np.uint32)
        for start in range(0, len(h), _BLOCK):
            block = buffer[: min(_BLOCK, len(h) - start)]
            np.multiply(h[start : start + _BLOCK, None], a, out=block)  # uint32: wraps mod 2³²
            np.add(block, b, out=block)
            np.minimum(sig, block.min(axis=0), out=sig)
        return sig

    def signatures(self, texts: list[str]) -> np.ndarray:
        """Signatures of many texts, one row each (n × num_perm, uint32)."""
        return self.signatures_and_hashes(texts)[0]

    def signatures_and_hashes(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Signatures, and each text's shingle hashes (fmix32 is a bijection: their sets give the
        same Jaccard as the shingles themselves, so verification can reuse them).

        Shingles of consecutive texts are processed together in a permutations × shingles block,
        and each text's minimum is one `minimum.reduceat` along the rows (1.4× the per-text loop).
        """
        a, b = self.permutations
        hashes = [_fmix32(shingle_hashes(strip(t), self.ngram)) for t in texts]
        sizes = np.array([len(h) for h in hashes], dtype=np.int64)
        out = np.full((len(texts), self.num_perm), EMPTY, np.uint32)
        buffer = np.empty((self.num_perm, _BATCH), np.uint32)
        start = 0
        while start < len(texts):
            end, total = start, 0
            while end < len(texts) and total + sizes[end] <= _BATCH:
                total += sizes[end]
                end += 1
            if end == start:  # one text larger than a batch
                out[start] = self.signature(texts[start])
                start += 1
                continue
            block = buffer[:, :total]
            np.multiply(a[:, None], np.concatenate(hashes[start:end])[None, :], out=block)  # uint32: wraps mod 2³²
            np.add(block, b[:, None], out=block)
            nonempty = np.flatnonzero(sizes[start:end])
            if len(nonempty):
                offsets = np.concatenate([[0], np.cumsum(sizes[start:end])[:-1]])[nonempty]
                out[start + nonempty] = np.minimum.reduceat(block, offsets, axis=1).T
            start = end
        return out, hashes

    def to_datasketch(self, sig: np.ndarray) -> Any:
        """A `datasketch.LeanMinHash` holding this signature."""
        from datasketch import LeanMinHash, MinHash

        m = MinHash(num_perm=self.num_perm, seed=self.seed, hashvalues=sig, scheme="affine32")
        return LeanMinHash(m)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of equal signature values, row by row (what datasketch's MinHash.jaccard computes)."""
    return (a == b).mean(axis=-1)


def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising weighted false positive and negative probability (datasketch's optimiser)."""
    from datasketch.lsh import _optimal_param

    return tuple(int(x) for x in _optimal_param(threshold, num_perm, fp_weight, fn_weight))  # type: ignore[return-value]


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band (n × bands): documents sharing any key are candidate duplicates."""
    n = len(sigs)
    keys = np.empty((n, bands), np.uint64)
    for band in range(bands):
        h = np.full(n, ((band + 1) * int(_POLY)) & 0xFFFFFFFFFFFFFFFF, np.uint64)
        for col in sigs[:, band * rows : (band + 1) * rows].T.astype(np.uint64):
            h = (h ^ col) * _POLY
        keys[:, band] = h ^ (h >> np.uint64(29))
    return keys
