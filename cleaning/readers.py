"""Read input files record by record, turning every bad record into a quarantine entry, never a crash.

Formats by file name: `.jsonl`/`.json`/`.ndjson`, the same with `.gz` or `.zst`, and `.parquet`.
Lines are read with a length cap, so a 10 GB line without a newline cannot exhaust memory.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow.parquet as pq
import zstandard

from cleaning.document import Doc

JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
COMPRESSIONS = ("", ".gz", ".zst")


@dataclass
class ReaderConfig:
    text_field: str = field(default="text", metadata={"help": "input field holding the document text"})
    id_field: str = field(
        default="id", metadata={"help": "input field holding a document id; missing ids become SOURCE:LINE"}
    )
    max_doc_mb: float = field(default=8.0, metadata={"help": "records with more text than this are quarantined"})


@dataclass(slots=True)
class BadRecord:
    """A record (or the rest of a file) that could not become a document, and why."""

    line: int
    reason: str
    detail: str
    raw: str = ""


def is_supported(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return True
    return any(name.endswith(s + c) for s in JSON_SUFFIXES for c in COMPRESSIONS)


def read_records(path: Path, source: str, config: ReaderConfig) -> Iterator[Doc | BadRecord]:
    """Yield a `Doc` per good record and a `BadRecord` per bad one, in file order."""
    if path.name.lower().endswith(".parquet"):
        yield from _read_parquet(path, source, config)
    else:
        yield from _read_jsonl(path, source, config)


def _open_binary(path: Path) -> IO[bytes]:
    name = path.name.lower()
    raw = open(path, "rb")  # noqa: SIM115 - closed by the wrapper or the caller
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if name.endswith(".zst"):
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return raw


def _read_jsonl(path: Path, source: str, config: ReaderConfig) -> Iterator[Doc | BadRecord]:
    max_bytes = int(config.max_doc_mb * 1_000_000)
    # A JSON line may hold up to 4 bytes per character plus escapes and other fields.
    line_cap = max_bytes * 6 + 65536
    lineno = 0
    try:
        with _open_binary(path) as f:
            while True:
                raw = f.readline(line_cap)
                if not raw:
                    return
                lineno += 1
                if not raw.endswith(b"\n") and len(raw) >= line_cap:
                    size = len(raw) + _skip_rest_of_line(f)
                    detail = f"line of {size:,} bytes, over the cap of {line_cap:,} (quarantined: its first bytes)"
                    yield BadRecord(lineno, "too_large", detail, _preview(raw))
                    continue
                if not raw.strip():
                    continue  # blank line: not a record
                yield _parse_json_line(raw, lineno, source, config, max_bytes)
    except (EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError, OSError) as exc:
        what = "truncated_file" if isinstance(exc, EOFError) or "ended" in str(exc) else "corrupt_file"
        yield BadRecord(lineno + 1, what, f"cannot read past line {lineno}: {exc}")


def _skip_rest_of_line(f: IO[bytes]) -> int:
    skipped = 0
    while True:
        chunk = f.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _parse_json_line(raw: bytes, lineno: int, source: str, config: ReaderConfig, max_bytes: int) -> Doc | BadRecord:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRecord(lineno, "invalid_utf8", f"byte {exc.start}: {exc.reason}", _preview(raw))
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BadRecord(lineno, "broken_json", str(exc), _preview(raw))
    if not isinstance(record, dict):
        return BadRecord(lineno, "not_an_object", f"JSON {type(record).__name__}, expected an object", _preview(raw))
    return _record_to_doc(record, lineno, source, config, max_bytes, raw)


def _read_parquet(path: Path, source: str, config: ReaderConfig) -> Iterator[Doc | BadRecord]:
    max_bytes = int(config.max_doc_mb * 1_000_000)
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        yield BadRecord(1, "corrupt_file", f"not a readable Parquet file: {exc}")
        return
    if config.text_field not in pf.schema_arrow.names:
        yield BadRecord(1, "missing_text", f"no column {config.text_field!r} in {pf.schema_arrow.names}")
        return
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                row += 1
                yield _record_to_doc(record, row, source, config, max_bytes, None)
    except Exception as exc:
        yield BadRecord(row + 1, "corrupt_file", f"cannot read past row {row}: {exc}")


def _record_to_doc(
    record: dict[str, Any], lineno: int, source: str, config: ReaderConfig, max_bytes: int, raw: bytes | None
) -> Doc | BadRecord:
    text = record.pop(config.text_field, None)
    if not isinstance(text, str):
        found = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return BadRecord(lineno, "missing_text", f"field {config.text_field!r} is {found}", _preview(raw, record))
    if not text.strip():
        return BadRecord(lineno, "empty_text", f"field {config.text_field!r} is empty or blank", text)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return BadRecord(lineno, "too_large", f"{size:,} bytes of text, over max_doc_mb={config.max_doc_mb}", text)
    given_id = record.pop(config.id_field, None)
    doc_id = str(given_id) if given_id not in (None, "") else f"{source}:{lineno}"
    url = record.pop("url") if isinstance(record.get("url"), str) else None
    meta = orjson.dumps(record, default=str).decode() if record else "{}"
    fields = {"source": source, "line": lineno, "url": url, "meta": meta}
    return Doc(doc_id, text, fields)


def _preview(raw: bytes | None, record: dict[str, Any] | None = None) -> str:
    """The offending record as text for the quarantine file; undecodable bytes shown as \\xNN."""
    if raw is not None:
        return raw.decode("utf-8", "backslashreplace").rstrip("\n")
    return orjson.dumps(record or {}, default=str).decode()
