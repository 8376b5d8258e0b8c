"""Read Common Crawl WARC and WET files as documents.

WARC `response` (and `resource`) records with an HTML payload become documents of their extracted
text, one block per line; WET `conversion` records are Common Crawl's own text extraction and are
taken as they are. Other records (requests, metadata, warcinfo, revisits) are not pages and are
passed over. Every page that does not become a document is quarantined with a reason:
`http_status` (not 2xx), `not_html`, `not_japanese` (too few kana among its letters: Chinese has
kanji but no kana), `no_text` (the extractor found no text), `too_large`, `undecodable`
(no charset decoded it cleanly; it is kept, decoded with U+FFFD, only when enough of it is
Japanese), and `truncated_file` for a file cut short. The `line` of a document is its record's
number in the file (1-based, every record counted), so a reject names file and record.

Documents carry the page URL, `timestamp` (WARC-Date), `warc_record_id`, `title` and `charset`.
Non-Japanese and non-HTML pages are quarantined with the first `PREVIEW` characters only: in a
general crawl they are most of the file, and a full copy would double the rejects for nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, Protocol

import numpy as np
import orjson

from cleaning.compressed import Members, kind_of
from cleaning.document import BadRecord, Doc
from cleaning.html_text import decode_page, extract_text
from cleaning.remote import InputFile, open_input

WARC_SUFFIXES = (".warc", ".wet", ".arc")
HTML_TYPES = ("text/html", "application/xhtml+xml")
PREVIEW = 300
MIN_LETTERS = 50  # below this a kana share says little; the rules stage judges such short texts
KANA = ((0x3041, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))


class WarcConfig(Protocol):
    """The reader options this module uses (fields of `readers.ReaderConfig`)."""

    max_doc_mb: float
    max_page_mb: float
    extractor: str
    min_kana_share: float


def is_warc(name: str) -> bool:
    name = name.lower()
    return any(name.endswith(s + c) for s in WARC_SUFFIXES for c in ("", ".gz", ".zst", ".bz2", ".xz"))


def kana_share(text: str) -> float:
    """Hiragana and katakana among the letters of a text (kanji, kana, Latin; not digits or marks)."""
    kana, letters = kana_and_letters(text)
    return kana / letters if letters else 0.0


def kana_and_letters(text: str) -> tuple[int, int]:
    """How many kana, and how many letters, a text has."""
    cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    kana = np.zeros(cp.size, dtype=bool)
    for lo, hi in KANA:
        kana |= (cp >= lo) & (cp <= hi)
    letters = kana | ((cp >= 0x4E00) & (cp <= 0x9FFF)) | ((cp >= 0x3400) & (cp <= 0x4DBF))
    letters |= ((cp | 0x20) >= ord("a")) & ((cp | 0x20) <= ord("z"))
    letters |= (cp >= 0xC0) & (cp <= 0x24F)  # Latin with accents
    letters |= (cp >= 0x370) & (cp <= 0x1FFF)  # Greek, Cyrillic, Hebrew, Arabic, Indic, Thai, Hangul Jamo...
    letters |= (cp >= 0xAC00) & (cp <= 0xD7AF)  # Hangul
    return int(kana.sum()), int(letters.sum())


def read_warc(path: InputFile, source: str, config: WarcConfig) -> Iterator[Doc | BadRecord]:
    """Yield a `Doc` per Japanese page and a `BadRecord` per page that is not one.

    Where a cut-short file breaks off, the records before the cut are read and one `truncated_file`
    entry follows."""
    from fastwarc.warc import ArchiveIterator

    max_text = int(config.max_doc_mb * 1_000_000)
    max_page = int(config.max_page_mb * 1_000_000)
    number = 0
    pending: Doc | BadRecord | None = None  # the last page, held until the file is known not to end inside it
    with _open_decompressed(path) as stream:
        try:
            for record in ArchiveIterator(stream, parse_http=True, auto_decode="all"):
                number += 1
                kind = record.headers.get("WARC-Type", "")
                if kind not in ("response", "resource", "conversion"):
                    continue
                if pending is not None:
                    yield pending
                pending = _page(record, kind, number, source, config, max_text, max_page)
        except OSError as exc:  # fastwarc: a record header it cannot parse
            yield from _cut_in(pending, number, f"unreadable record header ({exc})", "corrupt_file")
            return
        cut = getattr(stream, "cut", None)
    if cut is not None:
        yield from _cut_in(pending, number, cut, "truncated_file")
    elif pending is not None:
        yield pending
    elif number == 0:
        yield BadRecord(1, "corrupt_file", "no WARC records in the file (not a WARC/WET file?)")


def _cut_in(last: Doc | BadRecord | None, number: int, why: str, reason: str) -> list[Doc | BadRecord]:
    """The file breaks off after record `number`. If that record is the last page read, the page may be
    cut short: it is quarantined with its text (so nothing is lost) instead of kept."""
    line = last.fields["line"] if isinstance(last, Doc) else last.line if last is not None else 0
    if last is not None and line == number:
        raw = last.text if isinstance(last, Doc) else last.raw
        return [BadRecord(line, reason, f"the file breaks off in or right after record {line}: {why}", raw)]
    end = BadRecord(number + 1, reason, f"cannot read past record {number}: {why}")
    return [end] if last is None else [last, end]


def _open_decompressed(path: InputFile) -> IO[bytes]:
    """The file's bytes, decompressed if it is compressed, ending (with `cut` set) where it is cut short."""
    raw = open_input(path)
    kind = kind_of(raw)
    return Members(raw, kind) if kind else raw


def _page(
    record: Any, kind: str, number: int, source: str, config: WarcConfig, max_text: int, max_page: int
) -> Doc | BadRecord:
    headers = record.headers
    url = headers.get("WARC-Target-URI", "") or None
    if record.content_length > max_page:
        size = record.content_length
        return BadRecord(number, "too_large", f"{url}: record of {size:,} bytes, over max_page_mb={config.max_page_mb}")
    block = record.reader.read()
    if len(block) < record.content_length:
        detail = f"{url}: record {number} ends after {len(block):,} of {record.content_length:,} bytes"
        return BadRecord(number, "truncated_file", detail)
    meta: dict[str, Any] = {"timestamp": headers.get("WARC-Date", ""), "warc_record_id": _record_id(headers)}
    if kind == "conversion":
        text = block.decode("utf-8", "replace")
        text = "\n".join(line.strip() for line in text.splitlines() if line.strip())
        return _document(text, "", meta, url, number, source, config, max_text)
    if record.is_http:
        status = record.http_headers.status_code
        if not 200 <= status < 300:
            return BadRecord(number, "http_status", f"{url}: HTTP {status}", warn=False)
    ctype = (record.http_content_type if record.is_http else headers.get("Content-Type", "")) or ""
    if ctype.lower() not in HTML_TYPES and not _looks_like_html(block):
        preview = block[:PREVIEW].decode("utf-8", "replace")
        return BadRecord(number, "not_html", f"{url}: content type {ctype or 'missing'}", preview, warn=False)
    decoded = decode_page(block, record.http_charset if record.is_http else None)
    text, title = extract_text(decoded.text, config.extractor)
    meta.update(title=title, charset=decoded.charset)
    if decoded.replaced and kana_share(text) < config.min_kana_share:
        detail = f"{url}: no charset decodes it (best guess {decoded.charset})"
        return BadRecord(number, "undecodable", detail, text[:PREVIEW])
    return _document(text, title, meta, url, number, source, config, max_text)


def _document(
    text: str,
    title: str,
    meta: dict[str, Any],
    url: str | None,
    number: int,
    source: str,
    config: WarcConfig,
    max_text: int,
) -> Doc | BadRecord:
    if not text:
        detail = f"{url}: the extractor found no text" + (f" (title {title!r})" if title else "")
        return BadRecord(number, "no_text", detail, warn=False)
    kana, letters = kana_and_letters(text)
    share = kana / letters if letters else 0.0
    if share < config.min_kana_share and letters >= MIN_LETTERS:
        detail = f"{url}: kana are {share:.3f} of its letters, under min_kana_share={config.min_kana_share}"
        return BadRecord(number, "not_japanese", detail, text[:PREVIEW], warn=False)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_text:
        return BadRecord(
            number, "too_large", f"{url}: {size:,} bytes of text, over max_doc_mb={config.max_doc_mb}", text
        )
    fields = {"source": source, "line": number, "url": url, "meta": orjson.dumps(meta).decode()}
    return Doc(meta["warc_record_id"] or f"{source}:{number}", text, fields)


def _record_id(headers: Any) -> str:
    return headers.get("WARC-Record-ID", "").strip("<>")


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<body" in head
