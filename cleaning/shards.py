"""Parquet shards on disk: atomic writes (temp file + rename) and content fingerprints."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

COMPRESSION = "zstd"
TMP_SUFFIX = ".tmp"


class ShardWriter:
    """Writes one Parquet file under a temporary name; `commit` renames it into place.

    A run killed mid-write leaves only a `.tmp` file, which the runner deletes on the next run,
    so a half-written shard can never be mistaken for a finished one.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + TMP_SUFFIX)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.rows = 0
        self._writer = pq.ParquetWriter(self.tmp, schema, compression=COMPRESSION)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def commit(self) -> dict[str, Any]:
        """Close, fsync and rename into place; returns the file's manifest entry."""
        self._writer.close()
        _fsync(self.tmp)
        os.replace(self.tmp, self.path)
        return file_entry(self.path, self.rows)

    def abort(self) -> None:
        self._writer.close()
        self.tmp.unlink(missing_ok=True)


def file_entry(path: Path, rows: int) -> dict[str, Any]:
    return {"path": path.name, "rows": rows, "bytes": path.stat().st_size, "xxh3": file_hash(path)}


def file_hash(path: Path) -> str:
    """Content hash of a file (xxh3-128, several GB/s): the next stage's input fingerprint."""
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
