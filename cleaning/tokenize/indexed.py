"""Write (and read back) the Megatron/GPT-NeoX "mmap" indexed dataset: a `.bin` token stream and its `.idx`.

Layout of the `.idx` file, all little-endian (the public format of megatron-core's and GPT-NeoX's
`indexed_dataset.py`; this is our own implementation of it):

    b"MMIDIDX\\x00\\x00"          9-byte magic
    <Q version = 1
    <B dtype code                 8 = uint16 (vocabulary < 65,500), 4 = int32
    <Q sequence count N
    <Q document-index length D    N + 1 here: every document is one sequence
    int32[N]  sequence lengths in tokens
    int64[N]  byte offset of each sequence in the .bin
    int64[D]  document boundaries as sequence indices: 0, 1, …, N

The `.bin` is the sequences' tokens back to back. Both files are written under temporary names and
renamed into place, the `.idx` last: a pair is complete exactly when its `.idx` exists.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from types import TracebackType

import numpy as np

from cleaning.errors import CleaningError

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}
CODE_DTYPES = {code: dtype for dtype, code in DTYPE_CODES.items()}


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (Megatron's rule: vocabulary below 65,500), else int32."""
    return np.dtype(np.uint16) if vocab_size < 65_500 else np.dtype(np.int32)


class IndexedWriter:
    """Append documents (token id arrays) to `PREFIX.bin`; `close()` writes `PREFIX.idx` and commits both."""

    def __init__(self, prefix: Path, dtype: np.dtype) -> None:
        dtype = np.dtype(dtype)
        if dtype not in DTYPE_CODES:
            raise CleaningError(f"indexed dataset dtype must be uint16 or int32, not {dtype}")
        self.prefix = Path(prefix)
        self.dtype = dtype
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self._bin_tmp = self.prefix.with_name(self.prefix.name + ".bin.tmp")
        self._bin = self._bin_tmp.open("wb")
        self._lengths: list[int] = []
        self.tokens = 0

    def add(self, ids: np.ndarray | list[int]) -> None:
        array = np.asarray(ids)
        if array.size and (array.min() < 0 or array.max() > np.iinfo(self.dtype).max):
            raise CleaningError(f"token id out of range for {self.dtype}: {array.min()}..{array.max()}")
        self._bin.write(array.astype(self.dtype, copy=False).tobytes(order="C"))
        self._lengths.append(int(array.size))
        self.tokens += int(array.size)

    def add_many(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        """Append documents already laid end to end (`lengths` sums to `tokens.size`), e.g. from a spill."""
        if int(lengths.sum()) != tokens.size:
            raise CleaningError(f"add_many: lengths sum to {int(lengths.sum())}, not {tokens.size} tokens")
        self._bin.write(np.ascontiguousarray(tokens, dtype=self.dtype).tobytes())
        self._lengths.extend(lengths.tolist())
        self.tokens += int(tokens.size)

    def close(self) -> dict[str, int]:
        """Write the index, fsync both files and rename them into place; returns counts."""
        self._bin.flush()
        os.fsync(self._bin.fileno())
        self._bin.close()
        lengths = np.asarray(self._lengths, dtype=np.int32)
        pointers = np.zeros(len(lengths), dtype=np.int64)
        if len(lengths):
            pointers[1:] = np.cumsum(lengths[:-1], dtype=np.int64) * self.dtype.itemsize
        documents = np.arange(len(lengths) + 1, dtype=np.int64)
        idx_tmp = self.prefix.with_name(self.prefix.name + ".idx.tmp")
        with idx_tmp.open("wb") as f:
            f.write(MAGIC)
            f.write(struct.pack("<Q", VERSION))
            f.write(struct.pack("<B", DTYPE_CODES[self.dtype]))
            f.write(struct.pack("<Q", len(lengths)))
            f.write(struct.pack("<Q", len(documents)))
            f.write(lengths.tobytes(order="C"))
            f.write(pointers.tobytes(order="C"))
            f.write(documents.tobytes(order="C"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(self._bin_tmp, f"{self.prefix}.bin")
        os.replace(idx_tmp, f"{self.prefix}.idx")  # last: a pair is complete when its .idx exists
        return {"documents": len(lengths), "tokens": self.tokens}

    def __enter__(self) -> IndexedWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:  # leave nothing behind that could pass for a finished pair
            self._bin.close()
            self._bin_tmp.unlink(missing_ok=True)


def read_indexed(prefix: Path) -> list[np.ndarray]:
    """Every document of a pair, for tests and checks (training reads it with Megatron's own reader)."""
    idx = Path(f"{prefix}.idx").read_bytes()
    if idx[:9] != MAGIC:
        raise CleaningError(f"{prefix}.idx is not a Megatron mmap index (bad magic)")
    version, code, count, doc_count = struct.unpack_from("<QBQQ", idx, 9)
    if version != VERSION or code not in CODE_DTYPES:
        raise CleaningError(f"{prefix}.idx: unsupported version {version} or dtype code {code}")
    offset = 9 + struct.calcsize("<QBQQ")
    lengths = np.frombuffer(idx, np.int32, count, offset)
    pointers = np.frombuffer(idx, np.int64, count, offset + 4 * count)
    documents = np.frombuffer(idx, np.int64, doc_count, offset + 12 * count)
    if not np.array_equal(documents, np.arange(doc_count)):
        raise CleaningError(f"{prefix}.idx: documents spanning several sequences are not supported here")
    data = np.fromfile(f"{prefix}.bin", dtype=CODE_DTYPES[code])
    size = CODE_DTYPES[code].itemsize
    return [data[p // size : p // size + n] for p, n in zip(pointers.tolist(), lengths.tolist(), strict=True)]
