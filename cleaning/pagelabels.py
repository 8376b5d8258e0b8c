"""Line-labelled pages: every raw line of a page labelled C / B / N, and the page KEEP / DROP / BORDER.

They measure how clean a run's output is (`cleaning eval`) and train the line and page models of the
rules stage. A record is one JSON object per line, in one of three shapes:

- hand-written: `{"id", "page", "annotator", "lines": [["B", "ホーム > 商品一覧"], ["C", "本文…"], …]}`:
  each line carries its own label, so nothing can slip out of step;
- compact: `{"id", "page", "annotator", "text", "labels": "BBCCN…"}`, one label per `text.split("\\n")` line;
- reference: `{"id", "page", "labels": "BBCCN…"}` without text, for pages of a corpus kept elsewhere
  (the text is looked up by `id` in the run being scored, or in `source` when it is given).

Labels: C content worth training on, B boilerplate a model must never echo, N neutral (either way).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cleaning.errors import CleaningError

LINE_LABELS = "CBN"
VERDICTS = ("KEEP", "DROP", "BORDER")
FIELDS = {"id", "page", "labels", "lines", "text", "annotator", "why", "url", "source", "created", "note"}


@dataclass
class PageLabel:
    """One labelled page. `text` is None for a reference record until it is resolved."""

    id: str
    labels: str
    verdict: str
    where: str  # file:line of the record
    text: str | None = None
    url: str | None = None
    annotator: str = ""
    why: str = ""
    source: str = ""

    def lines(self) -> list[str]:
        if self.text is None:
            raise CleaningError(f"{self.where}: page {self.id} has no text (not resolved)")
        return self.text.split("\n")


@dataclass
class PageLabelReport:
    """What loading found: valid pages, and file:line errors that stop a training or an evaluation."""

    pages: list[PageLabel] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(p.verdict for p in self.pages)


def is_page_record(record: dict) -> bool:
    """Page records carry per-line labels; chunk annotations (the quality classifier's) do not."""
    return "labels" in record or "lines" in record


def jsonl_files(paths: list[Path], what: str = "page labels") -> list[Path]:
    """The .jsonl files of annotation files or folders (searched recursively), in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.jsonl")))
        elif path.is_file():
            files.append(path)
        else:
            raise CleaningError(f"{what} not found: {path}")
    if not files:
        raise CleaningError(f"no .jsonl {what} files in {[str(p) for p in paths]}")
    return files


def jsonl_lines(files: list[Path]) -> Iterator[tuple[str, bytes]]:
    """Every non-blank line of the files with its `file:line`, for error messages."""
    for path in files:
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if raw.strip():
                    yield f"{path}:{lineno}", raw


def load_page_labels(paths: list[Path], only_pages: bool = False) -> PageLabelReport:
    """Read page records from files or folders. Lines that are chunk annotations (no `labels`/`lines`)
    are skipped when `only_pages` is False, so one folder can hold both kinds."""
    report = PageLabelReport(files=jsonl_files(paths))
    seen: dict[str, str] = {}
    for where, raw in jsonl_lines(report.files):
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            report.errors.append(f"{where}: not valid UTF-8 JSON: {exc}")
            continue
        if not isinstance(record, dict):
            report.errors.append(f"{where}: expected a JSON object")
            continue
        if not is_page_record(record):
            if only_pages:
                report.errors.append(f"{where}: not a page record (needs 'labels' or 'lines')")
            continue
        problem, page = parse_page(record, where)
        if problem:
            report.errors.append(f"{where}: {problem}")
            continue
        assert page is not None
        if page.id in seen:
            report.errors.append(f"{where}: page id {page.id!r} already labelled at {seen[page.id]}")
            continue
        seen[page.id] = where
        report.pages.append(page)
    return report


def parse_page(record: dict, where: str) -> tuple[str | None, PageLabel | None]:
    """Validate one page record; returns (problem, None) or (None, page)."""
    unknown = set(record) - FIELDS
    if unknown:
        return f"unknown fields {sorted(unknown)} (known: {sorted(FIELDS)})", None
    page_id = record.get("id")
    if not isinstance(page_id, str) or not page_id:
        return "missing 'id'", None
    verdict = record.get("page")
    if verdict not in VERDICTS:
        return f"page {page_id}: 'page' must be one of {VERDICTS}, got {verdict!r}", None
    text = record.get("text")
    if "lines" in record:
        if "labels" in record or text is not None:
            return f"page {page_id}: give 'lines' alone, or 'text' with 'labels', not both", None
        pairs = record["lines"]
        if not isinstance(pairs, list) or not pairs:
            return f"page {page_id}: 'lines' must be a non-empty list of [label, line] pairs", None
        labels, texts = [], []
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                return f"page {page_id}: lines[{i}] must be a [label, line] pair of strings", None
            if "\n" in pair[1]:
                return f"page {page_id}: lines[{i}] contains a newline; give each line its own pair", None
            labels.append(pair[0])
            texts.append(pair[1])
        labels_str, text = "".join(labels) if all(len(x) == 1 for x in labels) else "?", "\n".join(texts)
        if labels_str == "?":
            return f"page {page_id}: every label must be one of C, B, N", None
    else:
        labels_str = record.get("labels")
        if not isinstance(labels_str, str) or not labels_str:
            return f"page {page_id}: 'labels' must be a string with one of C/B/N per line", None
        if text is not None:
            if not isinstance(text, str):
                return f"page {page_id}: 'text' must be a string", None
            n = len(text.split("\n"))
            if n != len(labels_str):
                return f"page {page_id}: {len(labels_str)} labels for {n} lines of text", None
    bad = sorted(set(labels_str) - set(LINE_LABELS))
    if bad:
        return f"page {page_id}: labels must be C, B or N; found {bad}", None
    for name in ("annotator", "why", "url", "source"):
        if record.get(name) is not None and not isinstance(record[name], str):
            return f"page {page_id}: '{name}' must be a string", None
    return None, PageLabel(
        page_id,
        labels_str,
        verdict,
        where,
        text,
        record.get("url"),
        record.get("annotator") or "",
        record.get("why") or "",
        record.get("source") or "",
    )


def resolve_texts(pages: list[PageLabel], texts: dict[str, str]) -> list[str]:
    """Fill in the text of reference records from `texts` (id -> raw text); returns the problems
    (an id not found, or a text whose line count differs from its labels)."""
    problems = []
    for page in pages:
        if page.text is None:
            if page.id not in texts:
                continue
            page.text = texts[page.id]
        n = len(page.text.split("\n"))
        if n != len(page.labels):
            problems.append(f"{page.where}: page {page.id}: {len(page.labels)} labels but the text has {n} lines")
            page.text = None
    return problems


def check_pages(paths: list[Path]) -> PageLabelReport:
    """`cleaning annotations check` for page records: errors per record plus a balance note."""
    report = load_page_labels(paths)
    for page in report.pages:
        if page.text is None and not page.source:
            report.warnings.append(
                f"{page.where}: page {page.id} is a reference without text or source: "
                "it can only be scored against a run that read that page"
            )
    return report
