"""Columns of arrays written grouped by owner, so that each owner later reads only its own slice.

Dedup's corpus-wide steps hand work from one set of tasks to another (pairs to the partition that
owns their node, pairs to the group that owns their component): each writer saves its columns sorted
by owner with the owners' offsets, and each reader maps every writer's files and copies its slice.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)


def owner_of(keys: np.ndarray, owners: int) -> np.ndarray:
    """Which of `owners` owns each key (a mix of the key, so shards and neighbours spread evenly)."""
    with np.errstate(over="ignore"):
        return (((np.asarray(keys, dtype=np.uint64) * _MIX) >> np.uint64(32)) % np.uint64(owners)).astype(np.int64)


def save(stem: Path, owner: np.ndarray, owners: int, columns: dict[str, np.ndarray]) -> None:
    """`stem`.NAME.npy per column, rows sorted by owner, and `stem`.offsets.npy (owners + 1)."""
    order = np.argsort(owner, kind="stable")
    np.save(f"{stem}.offsets.npy", np.searchsorted(owner[order], np.arange(owners + 1)))
    for name, column in columns.items():
        np.save(f"{stem}.{name}.npy", column[order])


def load(stems: Iterable[Path], owner: int, names: list[str]) -> dict[str, np.ndarray]:
    """Owner `owner`'s rows of every stem's columns, concatenated in stem order (memory-mapped reads:
    only the slice is copied)."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    dtypes: dict[str, np.dtype] = {}
    for stem in stems:
        offsets = np.load(f"{stem}.offsets.npy")
        lo, hi = int(offsets[owner]), int(offsets[owner + 1])
        for name in names:
            column = np.load(f"{stem}.{name}.npy", mmap_mode="r")
            dtypes[name] = column.dtype
            if hi > lo:
                parts[name].append(np.array(column[lo:hi]))
    return {
        name: np.concatenate(parts[name]) if parts[name] else np.empty(0, dtypes.get(name, np.uint64)) for name in names
    }
