"""Hand annotations: one JSON object per line in annotations/*.jsonl, validated before any training.

Schema: text (str), label ("good" | "noise"), annotator (str), optional category
(ad, word_list, offensive, low_quality, other), url / source, note, created.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cleaning.errors import CleaningError
from cleaning.pagelabels import is_page_record, jsonl_files, jsonl_lines

LABELS = ("good", "noise")
CATEGORIES = ("ad", "word_list", "offensive", "low_quality", "other")
FIELDS = {"text", "label", "annotator", "category", "url", "source", "note", "created"}


@dataclass(frozen=True)
class Annotation:
    text: str
    label: str
    annotator: str
    category: str | None
    where: str  # file:line


@dataclass
class CheckReport:
    """Everything `cleaning annotations check` finds; errors block training, warnings do not."""

    annotations: list[Annotation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    pages: int = 0  # page records (line labels) seen and left to cleaning.pagelabels

    def counts(self) -> Counter[str]:
        return Counter(a.label for a in self.annotations)


def annotation_files(paths: list[Path]) -> list[Path]:
    return jsonl_files(paths, "annotation")


def check_annotations(paths: list[Path]) -> CheckReport:
    """Parse and validate every annotation file; collect file:line errors instead of stopping."""
    report = CheckReport(files=annotation_files(paths))
    for where, raw in jsonl_lines(report.files):
        if _is_page_record(raw):
            report.pages += 1  # line-labelled pages: checked by cleaning.pagelabels
            continue
        problem, annotation = _parse(raw, where)
        if problem:
            report.errors.append(f"{where}: {problem}")
        else:
            report.annotations.append(annotation)  # type: ignore[arg-type]
    _cross_checks(report)
    return report


def _is_page_record(raw: bytes) -> bool:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(record, dict) and is_page_record(record)


def _parse(raw: bytes, where: str) -> tuple[str | None, Annotation | None]:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"not valid UTF-8 JSON: {exc}", None
    if not isinstance(record, dict):
        return "expected a JSON object", None
    unknown = set(record) - FIELDS
    if unknown:
        return f"unknown fields {sorted(unknown)}", None
    text, label, annotator = record.get("text"), record.get("label"), record.get("annotator")
    if not isinstance(text, str) or not text.strip():
        return "empty or missing text", None
    if label not in LABELS:
        return f"label must be one of {LABELS}, got {label!r}", None
    if not isinstance(annotator, str) or not annotator.strip():
        return "missing annotator", None
    category = record.get("category")
    if category is not None and category not in CATEGORIES:
        return f"category must be one of {CATEGORIES} or absent, got {category!r}", None
    return None, Annotation(text, label, annotator, category, where)


def _key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _cross_checks(report: CheckReport) -> None:
    by_text: dict[str, list[Annotation]] = defaultdict(list)
    for a in report.annotations:
        by_text[_key(a.text)].append(a)
    for group in by_text.values():
        if len(group) < 2:
            continue
        labels = {a.label for a in group}
        places = ", ".join(f"{a.where} ({a.label}, {a.annotator})" for a in group)
        if len(labels) > 1:
            report.errors.append(f"same text with conflicting labels: {places}")
        else:
            report.warnings.append(f"exact duplicate: {places}")
    counts = report.counts()
    total = sum(counts.values())
    if total and min(counts.get(label, 0) for label in LABELS) < 0.2 * total:
        report.warnings.append(f"classes are unbalanced: {dict(counts)}")
    for label in LABELS:
        if counts.get(label, 0) == 0:
            report.errors.append(f"no annotation labelled {label!r}")


def training_set(paths: list[Path], skip_invalid: bool) -> tuple[list[Annotation], CheckReport]:
    """Annotations to train on: refuses invalid data unless skip_invalid, and drops duplicates and
    conflicting texts (a conflict cannot teach the model anything)."""
    report = check_annotations(paths)
    line_errors = [e for e in report.errors if not e.startswith(("same text", "no annotation"))]
    if line_errors and not skip_invalid:
        more = f" (and {len(line_errors) - 1} more invalid lines)" if len(line_errors) > 1 else ""
        raise CleaningError(
            f"{line_errors[0]}{more}. Fix the line, or skip invalid lines: `--set quality.skip_invalid=true` "
            "for `cleaning run` / `make clean-ja RUN_ARGS=...`, `--skip-invalid` for `cleaning quality train`; "
            "`cleaning annotations check` lists them all"
        )
    groups: dict[str, list[Annotation]] = defaultdict(list)
    for a in report.annotations:
        groups[_key(a.text)].append(a)
    kept = [g[0] for g in groups.values() if len({a.label for a in g}) == 1]
    counts = Counter(a.label for a in kept)
    if any(counts.get(label, 0) < 5 for label in LABELS):
        raise CleaningError(f"too few annotations to train: {dict(counts)} (need at least 5 per label)")
    return kept, report
