"""Build small WARC and WET files for tests, with warcio (a second implementation next to the
fastwarc reader under test). Pages are HTML from tests/data/page.html around given paragraphs."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

TEMPLATE = (Path(__file__).parent / "data" / "page.html").read_text(encoding="utf-8")
DATE = "2023-11-28T10:19:01Z"


@dataclass
class Page:
    url: str
    body: bytes
    content_type: str = "text/html"
    status: str = "200 OK"


@dataclass
class Warc:
    """Records written, as (record number in the file, WARC-Record-ID) per response page."""

    path: Path
    responses: list[tuple[int, str]] = field(default_factory=list)


def html(title: str, paragraphs: list[str], meta_charset: str | None = None) -> str:
    meta = f'<meta charset="{meta_charset}">' if meta_charset else ""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return TEMPLATE.format(meta=meta, title=title, paragraphs=body)


def write_warc(path: Path, pages: list[Page], gzip: bool = True) -> Warc:
    """A WARC laid out like Common Crawl's: warcinfo, then request, response, metadata per page."""
    out = Warc(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=gzip)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "tests"}))
        number = 1
        for page in pages:
            request = writer.create_warc_record(
                page.url,
                "request",
                payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"),
                warc_headers_dict={"WARC-Date": DATE},
            )
            writer.write_record(request)
            http = StatusAndHeaders(page.status, [("Content-Type", page.content_type)], protocol="HTTP/1.1")
            response = writer.create_warc_record(
                page.url,
                "response",
                payload=io.BytesIO(page.body),
                http_headers=http,
                warc_headers_dict={"WARC-Date": DATE},
            )
            writer.write_record(response)
            out.responses.append((number + 2, response.rec_headers.get_header("WARC-Record-ID").strip("<>")))
            metadata = writer.create_warc_record(page.url, "metadata", payload=io.BytesIO(b"fetchTimeMs: 12\r\n"))
            writer.write_record(metadata)
            number += 3
    return out


def write_wet(path: Path, texts: dict[str, str]) -> list[str]:
    """A WET file: warcinfo, then one `conversion` record of plain text per URL; returns the record ids."""
    ids = []
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "tests"}))
        for url, text in texts.items():
            record = writer.create_warc_record(
                url,
                "conversion",
                payload=io.BytesIO(text.encode("utf-8")),
                warc_headers_dict={"WARC-Date": DATE, "Content-Type": "text/plain"},
            )
            writer.write_record(record)
            ids.append(record.rec_headers.get_header("WARC-Record-ID").strip("<>"))
    return ids
