"""Page verdicts as training documents: a line-labelled page teaches the classifier the whole page.

A page record (`cleaning.pagelabels`) says KEEP or DROP for a crawl page. The classifier never sees
the raw page: it sees what the rules stage left of it. So a page joins training as that text,
looked up by id in the quality stage's input shards (the rules stage's output): KEEP is good, DROP
is noise, BORDER is left out. Pages the rules stage already rejected, and pages of other corpora,
are not in the shards and are simply not used; the model card counts them.

Pages with less than `min_chars` left are left out too: their verdict is about how much prose is
left (the labelling guidelines keep a page only with ~200 characters of it), which is the rules
stage's call. Taught to the classifier, it learnt "short is noise" and rejected 65% of clean
Wikipedia leads (median 95 characters); with the floor, 1%.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleaning.pagelabels import PageLabel, load_page_labels

MIN_CHARS = 200


@dataclass(frozen=True)
class TrainDoc:
    """One training document: an annotation's text, or a page as the classifier sees it.
    Documents with the same `group` (a page's site) stay in the same cross-validation fold."""

    text: str
    label: str  # good | noise
    group: str
    kind: str  # chunk | page
    where: str  # file:line of the label


def labelled_pages(paths: list[Path]) -> list[PageLabel]:
    """KEEP and DROP page records of the annotation folders (errors are `annotations check`'s job)."""
    report = load_page_labels(paths)
    return [p for p in report.pages if p.verdict in ("KEEP", "DROP")]


def page_documents(
    pages: list[PageLabel], shards: list[Path], min_chars: int = MIN_CHARS
) -> tuple[list[TrainDoc], Counter[str]]:
    """The labelled pages found in the shards, as the classifier sees them; counts of used/missing."""
    wanted = {p.id: p for p in pages}
    found: dict[str, tuple[str, str]] = {}
    for shard in shards:
        if not wanted:
            break
        ids = pq.read_table(shard, columns=["id"])["id"]
        mask = pc.is_in(ids, value_set=pa.array(list(wanted), type=ids.type))
        if not pc.any(mask).as_py():
            continue
        columns = ["id", "text", "url"] if "url" in pq.read_schema(shard).names else ["id", "text"]
        for row in pq.read_table(shard, columns=columns).filter(mask).to_pylist():
            page = wanted.pop(row["id"], None)
            if page is not None:
                found[page.id] = (row["text"], row.get("url") or page.url or "")
    docs = [page_document(page, *found[page.id]) for page in pages if page.id in found]
    return keep_long_enough(docs, len(pages), min_chars)


def page_document(page: PageLabel, text: str, url: str | None) -> TrainDoc:
    label = "good" if page.verdict == "KEEP" else "noise"
    return TrainDoc(text, label, "site:" + (urlsplit(url or "").hostname or page.id), "page", page.where)


def keep_long_enough(docs: list[TrainDoc], labelled: int, min_chars: int) -> tuple[list[TrainDoc], Counter[str]]:
    """The documents with at least min_chars characters, and counts: used, too short, not in the run."""
    kept = [d for d in docs if len(d.text.strip()) >= min_chars]
    return kept, Counter(used=len(kept), too_short=len(docs) - len(kept), not_in_run=labelled - len(docs))
