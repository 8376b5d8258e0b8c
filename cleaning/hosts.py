"""The site a document comes from: its URL's host without `www.` (site-level rules, dedup, reports)."""

from __future__ import annotations

from urllib.parse import urlsplit


def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None
