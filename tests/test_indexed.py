"""The Megatron/GPT-NeoX mmap indexed dataset writer: exact bytes of the format, round trip, atomicity."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from cleaning.errors import CleaningError
from cleaning.tokenize.indexed import MAGIC, IndexedWriter, read_indexed, token_dtype


def test_index_bytes_follow_the_megatron_layout(tmp_path: Path) -> None:
    prefix = tmp_path / "part-00000"
    with IndexedWriter(prefix, np.uint16) as w:
        w.add([5, 6, 7])
        w.add([])
        w.add(np.array([65_000, 1]))
    idx = (tmp_path / "part-00000.idx").read_bytes()
    assert idx[:9] == MAGIC
    assert struct.unpack_from("<QBQQ", idx, 9) == (1, 8, 3, 4)
    body = 9 + 8 + 1 + 8 + 8
    assert np.frombuffer(idx, np.int32, 3, body).tolist() == [3, 0, 2]
    assert np.frombuffer(idx, np.int64, 3, body + 12).tolist() == [0, 6, 6]  # byte offsets
    assert np.frombuffer(idx, np.int64, 4, body + 36).tolist() == [0, 1, 2, 3]
    assert len(idx) == body + 12 + 24 + 32
    assert np.fromfile(tmp_path / "part-00000.bin", np.uint16).tolist() == [5, 6, 7, 65_000, 1]


@pytest.mark.parametrize("vocab", [32_000, 100_000])
def test_round_trip_with_either_dtype(tmp_path: Path, vocab: int) -> None:
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, vocab, rng.integers(0, 50)) for _ in range(200)]
    with IndexedWriter(tmp_path / "p", token_dtype(vocab)) as w:
        for d in docs:
            w.add(d)
    back = read_indexed(tmp_path / "p")
    assert len(back) == 200 and all(np.array_equal(a, b) for a, b in zip(back, docs, strict=True))
    assert back[0].dtype == (np.uint16 if vocab < 65_500 else np.int32)


def test_ids_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CleaningError, match="out of range"), IndexedWriter(tmp_path / "p", np.uint16) as w:
        w.add([70_000])
    assert not list(tmp_path.iterdir()), "a failed writer leaves no files"


def test_nothing_is_visible_before_close(tmp_path: Path) -> None:
    w = IndexedWriter(tmp_path / "p", np.int32)
    w.add([1, 2])
    assert not (tmp_path / "p.idx").exists() and not (tmp_path / "p.bin").exists()
    assert w.close() == {"documents": 1, "tokens": 2}
    assert (tmp_path / "p.idx").exists() and not list(tmp_path.glob("*.tmp"))


def test_add_many_appends_documents_laid_end_to_end(tmp_path: Path) -> None:
    with IndexedWriter(tmp_path / "p", np.uint16) as w:
        w.add([1])
        w.add_many(np.array([2, 3, 4, 5, 6], np.uint16), np.array([2, 0, 3]))
        with pytest.raises(CleaningError, match="lengths sum to 4"):
            w.add_many(np.array([7, 8], np.uint16), np.array([4]))
    assert [d.tolist() for d in read_indexed(tmp_path / "p")] == [[1], [2, 3], [], [4, 5, 6]]
