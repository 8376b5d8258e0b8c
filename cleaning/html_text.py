"""A crawled page's bytes to text: find its character set, then extract its text one block per line.

Japanese sites still serve Shift_JIS and EUC-JP, often declared wrongly (a server default of
ISO-8859-1, a meta tag left from a template). Decoding such a page as UTF-8 with replacement loses
its text for good. Bytes that are valid UTF-8 are UTF-8 (Shift_JIS or EUC-JP text of any length is
almost never valid UTF-8, while the permissive JIS codecs can "decode" UTF-8 into nonsense); other
pages are decoded strictly with the declared charsets, uchardet's guess and, last, a Latin-1-family
declaration (which decodes any bytes without an error), and the reading with the most hiragana
wins: a wrong Japanese codec often decodes without an error, into nonsense without hiragana.

The extractor keeps one block (paragraph, heading, list item, table row) per line: that is the
shape the rules stage's line rules and line model read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EXTRACTORS = ("resiliparse-all", "resiliparse", "trafilatura")
# Declarations that decode any byte string without an error, so they cannot be checked by decoding.
LATIN = {"iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252", "us-ascii", "ascii"}
# Web labels to the Python codecs that read what those sites really send (Windows extensions
# such as ① and ㈱ are common in Shift_JIS and EUC-JP pages).
CODECS = {
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932", "shift_jis_2004"),
    "x-sjis": ("cp932", "shift_jis_2004"),
    "windows-31j": ("cp932",),
    "ms932": ("cp932",),
    "cp932": ("cp932",),
    "euc-jp": ("euc_jp", "euc_jis_2004", "cp932"),
    "x-euc-jp": ("euc_jp", "euc_jis_2004"),
    "euc_jp": ("euc_jp", "euc_jis_2004"),
}
_META = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HIRAGANA = re.compile("[\u3041-\u309f]")
META_BYTES = 4096  # the HTML standard asks for the charset declaration within the first 1,024 bytes


@dataclass(slots=True)
class Decoded:
    text: str
    charset: str  # the codec that decoded the page
    replaced: bool  # no candidate decoded cleanly: undecodable bytes became U+FFFD


def decode_page(body: bytes, declared: str | None) -> Decoded:
    """The page's text: UTF-8 if it is valid UTF-8; else the strict reading (HTTP charset, meta charset,
    uchardet's guess, Latin-1-family declarations) with the most hiragana; if none decodes, the guess
    with replacement characters."""
    from resiliparse.parse.encoding import detect_encoding

    if body.startswith(b"\xef\xbb\xbf"):
        return Decoded(body[3:].decode("utf-8", "replace"), "utf-8", False)
    try:  # most pages: no meta search, no detection
        return Decoded(body.decode("utf-8"), "utf-8", False)
    except UnicodeDecodeError:
        pass
    meta = _META.search(body[:META_BYTES])
    labels = [declared, meta.group(1).decode("ascii", "ignore") if meta else None]
    labels = [x.strip().lower() for x in labels if x]
    guess = detect_encoding(body).lower()
    order = [x for x in labels if x not in LATIN] + [guess] + [x for x in labels if x in LATIN]
    decoded: list[Decoded] = []
    for label in order:
        for codec in CODECS.get(label, (label,)):
            if codec in {d.charset for d in decoded}:
                continue
            try:
                decoded.append(Decoded(body.decode(codec), codec, False))
                break  # a label's first codec that works is that label's reading
            except (UnicodeDecodeError, LookupError):
                continue
    if decoded:
        # A wrong Japanese codec often decodes without an error (EUC-JP bytes read as Shift_JIS become
        # half-width katakana): of the readings, the one with the most hiragana is the Japanese one.
        return max(decoded, key=lambda d: _hiragana(d.text))  # ties: the earlier reading
    codec = next((c for c in CODECS.get(guess, (guess,)) if _known(c)), "utf-8")
    return Decoded(body.decode(codec, "replace"), codec, True)


def _hiragana(text: str) -> int:
    return len(_HIRAGANA.findall(text))


def _known(codec: str) -> bool:
    try:
        b"".decode(codec)
    except LookupError:
        return False
    return True


def extract_text(html: str, extractor: str) -> tuple[str, str]:
    """(text, title) of a page: one block per line, lines stripped, no empty lines.

    `resiliparse-all`: every visible text block, leaving boilerplate to the rules stage (the default:
    measured on labelled pages, it loses less content for the same purity after the rules stage);
    `resiliparse`: resiliparse's main-content guess; `trafilatura`: trafilatura's main content."""
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    title = (tree.title or "").strip()
    if extractor == "trafilatura":
        import trafilatura

        text = trafilatura.extract(
            html, include_comments=False, include_tables=True, deduplicate=False, with_metadata=False
        )
        text = text or ""
    else:
        from resiliparse.extract.html2text import extract_plain_text

        text = extract_plain_text(
            tree,
            main_content=extractor == "resiliparse",
            preserve_formatting=True,
            list_bullets=False,
            alt_texts=False,
            links=False,
            form_fields=False,
            noscript=False,
        )
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line), title
