"""Read input files record by record, turning every bad record into a quarantine entry, never a crash.

Formats by file name: `.jsonl`/`.json`/`.ndjson`, the same with `.gz`, `.zst`, `.bz2` or `.xz`, and
`.parquet`; the compression is told by the file's first bytes, so a plain file named `.gz` is still
read. Lines are read with a length cap, so a 10 GB line without a newline cannot exhaust memory.
A UTF-8 byte-order mark is skipped, and a file whose lines end in a lone CR (old Mac style) is read
line by line like any other. A compressed file cut short yields its records up to the cut, then one
`truncated_file` entry: for zstd this needs a check of its own, since its stream reader just ends.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow.parquet as pq
import zstandard

from cleaning.compressed import Members, kind_of
from cleaning.document import BadRecord, Doc
from cleaning.html_text import EXTRACTORS
from cleaning.remote import InputFile, open_input
from cleaning.warc import is_warc, read_warc

JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
COMPRESSIONS = ("", ".gz", ".zst", ".bz2", ".xz")
PEEK = 1 << 16  # bytes looked at to tell CR-only line ends
# Errors of access, not of content: the file's task fails (a rerun tries again) instead of the file
# being quarantined, which the run would remember as long as the file's size and time stay the same.
ACCESS_ERRORS = (PermissionError, FileNotFoundError, IsADirectoryError, TimeoutError, InterruptedError)


@dataclass
class ReaderConfig:
    text_field: str = field(default="text", metadata={"help": "input field holding the document text"})
    id_field: str = field(
        default="id", metadata={"help": "input field holding a document id; missing ids become SOURCE:LINE"}
    )
    max_doc_mb: float = field(default=8.0, metadata={"help": "records with more text than this are quarantined"})
    extractor: str = field(
        default="resiliparse-all",
        metadata={
            "help": "WARC pages: resiliparse-all (every text block, one per line; the rules stage removes "
            "boilerplate) | resiliparse (its main-content guess) | trafilatura (main content, ~20x slower); "
            "bench/results/warc-eval-*.md compares them"
        },
    )
    min_kana_share: float = field(
        default=0.05,
        metadata={"help": "WARC/WET pages whose letters are fewer than this share kana are not Japanese"},
    )
    max_page_mb: float = field(default=32.0, metadata={"help": "WARC records larger than this are quarantined"})

    def __post_init__(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"extractor must be one of {', '.join(EXTRACTORS)}, got {self.extractor!r}")


def is_supported(path: InputFile) -> bool:
    name = path.name.lower()
    if name.endswith(".parquet") or is_warc(name):
        return True
    return any(name.endswith(s + c) for s in JSON_SUFFIXES for c in COMPRESSIONS)


def read_records(path: InputFile, source: str, config: ReaderConfig) -> Iterator[Doc | BadRecord]:
    """Yield a `Doc` per good record and a `BadRecord` per bad one, in file order."""
    if path.name.lower().endswith(".parquet"):
        yield from _read_parquet(path, source, config)
    elif is_warc(path.name):
        yield from read_warc(path, source, config)
    else:
        yield from _read_jsonl(path, source, config)


def compression(path: InputFile) -> str:
    """The compression of a file by its first bytes, not its name: a plain file named .gz is read."""
    with open_input(path) as f:
        return kind_of(f)


@contextmanager
def _open_binary(path: InputFile) -> Iterator[IO[bytes]]:
    """The decompressed bytes of a local or remote file, closed (with the file) on leaving."""
    with open_input(path) as raw:
        kind = kind_of(raw)
        stream: IO[bytes]
        if kind == ".gz":
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif kind == ".bz2":
            stream = bz2.BZ2File(raw, "rb")
        elif kind == ".xz":
            stream = lzma.LZMAFile(raw, "rb")  # noqa: SIM115 - closed by the `with` below
        elif kind == ".zst":
            stream = io.BufferedReader(Members(raw, ".zst", raise_at_cut=True), buffer_size=1 << 20)
        else:
            stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw, buffer_size=1 << 20)  # type: ignore[arg-type]
        with stream:
            head = stream.peek(PEEK)[:PEEK]  # type: ignore[attr-defined]
            if b"\r" in head and b"\n" not in head and len(head) > 0:
                with io.BufferedReader(_CarriageReturns(stream), buffer_size=1 << 20) as lines:
                    yield lines
            else:
                yield stream


class _CarriageReturns(io.RawIOBase):
    """Lone CR line ends read as LF (a raw CR cannot occur inside a JSON string, only between tokens)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        data = data.replace(b"\r", b"\n")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def _read_jsonl(path: InputFile, source: str, config: ReaderConfig) -> Iterator[Doc | BadRecord]:
    max_bytes = int(config.max_doc_mb * 1_000_000)
    # A JSON line may hold up to 4 bytes per character plus escapes and other fields.
    line_cap = max_bytes * 6 + 65536
    lineno = complete = 0  # lines started, lines read to their end
    try:
        with _open_binary(path) as f:
            while True:
                raw = f.readline(line_cap)
                if not raw:
                    return
                lineno += 1
                if not raw.endswith(b"\n") and len(raw) >= line_cap:
                    size = len(raw) + _skip_rest_of_line(f)
                    complete = lineno
                    detail = f"line of {size:,} bytes, over the cap of {line_cap:,} (quarantined: its first bytes)"
                    yield BadRecord(lineno, "too_large", detail, _preview(raw))
                    continue
                complete = lineno
                if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                if not raw.strip():
                    continue  # blank line: not a record
                yield _parse_json_line(raw, lineno, source, config, max_bytes)
    except ACCESS_ERRORS:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError, lzma.LZMAError, OSError) as exc:
        what = "truncated_file" if isinstance(exc, EOFError) or "ended" in str(exc) else "corrupt_file"
        yield BadRecord(complete + 1, what, f"cannot read past line {complete}: {exc}")


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
        record = _loads_lone_surrogates(raw) if "surrogate" in str(exc) else None
        if record is None:
            return BadRecord(lineno, "broken_json", str(exc), _preview(raw))
    if not isinstance(record, dict):
        return BadRecord(lineno, "not_an_object", f"JSON {type(record).__name__}, expected an object", _preview(raw))
    return _record_to_doc(record, lineno, source, config, max_bytes, raw)


def _loads_lone_surrogates(raw: bytes) -> Any:
    """JSON with a lone surrogate escape ("\\ud800", half an emoji) is valid JSON that orjson refuses:
    read it with the standard library and make each lone surrogate U+FFFD, so the record is kept."""
    import json

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        if isinstance(value, dict):
            return {fix(k): fix(v) for k, v in value.items()}
        return [fix(v) for v in value] if isinstance(value, list) else value

    try:
        return fix(json.loads(raw))
    except (ValueError, RecursionError):
        return None


def _read_parquet(path: InputFile, source: str, config: ReaderConfig) -> Iterator[Doc | BadRecord]:
    if isinstance(path, Path):
        yield from _read_parquet_file(path, source, config)
    else:
        with open_input(path) as f:
            yield from _read_parquet_file(f, source, config)


def _read_parquet_file(path: Path | IO[bytes], source: str, config: ReaderConfig) -> Iterator[Doc | BadRecord]:
    max_bytes = int(config.max_doc_mb * 1_000_000)
    try:
        pf = pq.ParquetFile(path)
    except ACCESS_ERRORS:
        raise
    except Exception as exc:  # pyarrow raises several types for a bad file
        yield BadRecord(1, "corrupt_file", f"not a readable Parquet file: {exc}")
        return
    if config.text_field not in pf.schema_arrow.names:
        yield BadRecord(1, "missing_text", f"no column {config.text_field!r} in {pf.schema_arrow.names}")
        return
    row = 0  # rows before the current row group
    for group in range(pf.num_row_groups):
        size = pf.metadata.row_group(group).num_rows
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=1024, row_groups=[group]):
                for record in batch.to_pylist():
                    done += 1
                    yield _record_to_doc(record, row + done, source, config, max_bytes, None)
        except Exception as exc:  # one unreadable row group: its remaining rows, each with its row number
            detail = f"row group {group} unreadable after {done} of its {size} rows: {exc}"
            for lost in range(row + done + 1, row + size + 1):
                yield BadRecord(lost, "corrupt_row_group", detail)
        row += size


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
    try:
        meta = _dump_meta(record)
    except (ValueError, TypeError, RecursionError) as exc:
        detail = f"side fields cannot be stored ({type(exc).__name__}: {str(exc)[:100]})"
        return BadRecord(lineno, "unstorable_fields", detail, _preview(raw) if raw is not None else text)
    fields = {"source": source, "line": lineno, "url": url, "meta": meta}
    return Doc(doc_id, text, fields)


def _dump_meta(record: dict[str, Any]) -> str:
    """Side fields as JSON. orjson stops at 255 levels of nesting; the standard library goes deeper."""
    if not record:
        return "{}"
    try:
        return orjson.dumps(record, default=str).decode()
    except orjson.JSONEncodeError:
        import json

        return json.dumps(record, default=str, ensure_ascii=False, separators=(",", ":"))


def _preview(raw: bytes | None, record: dict[str, Any] | None = None) -> str:
    """The offending record as text for the quarantine file; undecodable bytes shown as \\xNN."""
    if raw is not None:
        return raw.decode("utf-8", "backslashreplace").rstrip("\n")
    return orjson.dumps(record or {}, default=str).decode()
