"""Line-labelled page records: the three shapes, their errors (file:line), and `annotations check`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cleaning.pagelabels import check_pages, load_page_labels, resolve_texts
from tests.conftest import ROOT


def write(path: Path, records: list[dict | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_three_shapes_give_the_same_page(tmp_path: Path) -> None:
    text = "ホーム\n霞野市の工務店です。\n見出し"
    path = write(
        tmp_path / "p.jsonl",
        [
            {"id": "a", "page": "KEEP", "lines": [["B", "ホーム"], ["C", "霞野市の工務店です。"], ["N", "見出し"]]},
            {"id": "b", "page": "KEEP", "text": text, "labels": "BCN"},
            {"id": "c", "page": "KEEP", "labels": "BCN", "why": "reference"},
            {"text": "a chunk annotation for the quality classifier", "label": "good", "annotator": "x"},
        ],
    )
    report = load_page_labels([path])
    assert report.errors == []
    a, b, c = report.pages
    assert a.text == b.text == text and a.labels == b.labels == c.labels == "BCN"
    assert c.text is None, "a reference record carries no text"
    assert resolve_texts([c], {"c": text}) == [] and c.lines() == text.split("\n")
    other = load_page_labels([path]).pages[2]
    assert resolve_texts([other], {"c": "one line"}) != [], "a text with another line count is a problem"
    assert other.text is None


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.jsonl",
        [
            {"id": "a", "page": "KEEP", "text": "一行目\n二行目", "labels": "C"},
            {"id": "b", "page": "MAYBE", "labels": "C"},
            {"id": "c", "page": "DROP", "labels": "CX"},
            {"id": "d", "page": "DROP", "lines": [["B", "ホーム"], "loose"]},
            "{not json",
            {"id": "e", "page": "KEEP", "labels": "C", "colour": "red"},
            {"id": "f", "page": "KEEP", "labels": "C"},
            {"id": "f", "page": "DROP", "labels": "B"},
        ],
    )
    errors = load_page_labels([path]).errors
    expected = [
        (1, "1 labels for 2 lines"),
        (2, "'page' must be one of"),
        (3, "labels must be C, B or N"),
        (4, "lines[1] must be a [label, line] pair"),
        (5, "not valid UTF-8 JSON"),
        (6, "unknown fields ['colour']"),
        (8, "already labelled at"),
    ]
    assert len(errors) == len(expected), errors
    for error, (line, message) in zip(errors, expected, strict=True):
        assert error.startswith(f"{path}:{line}: ") and message in error, error


def test_reference_without_text_or_source_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "p.jsonl", [{"id": "x", "page": "KEEP", "labels": "CC"}])
    report = check_pages([path])
    assert report.errors == [] and "reference without text" in report.warnings[0]


def test_annotations_check_validates_both_kinds(tmp_path: Path) -> None:
    folder = tmp_path / "annotations"
    folder.mkdir()
    chunks = [{"text": f"文 {i}", "label": lab, "annotator": "x"} for i, lab in enumerate("gn" * 3)]
    write(folder / "chunks.jsonl", chunks)
    write(folder / "pages.jsonl", [{"id": "p", "page": "DROP", "lines": [["B", "ホーム"]]}])
    ok = subprocess.run([sys.executable, "-m", "cleaning", "annotations", "check", str(folder)], capture_output=True,
                        text=True, cwd=ROOT)  # fmt: skip
    assert ok.returncode == 1, "chunk labels 'g'/'n' are invalid"
    write(folder / "chunks.jsonl", [{"text": f"文 {i}", "label": lab, "annotator": "x"} for i, lab in
                                    enumerate(["good", "noise"] * 3)])  # fmt: skip
    ok = subprocess.run([sys.executable, "-m", "cleaning", "annotations", "check", str(folder)], capture_output=True,
                        text=True, cwd=ROOT)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 labelled pages (KEEP 0, DROP 1, BORDER 0)" in ok.stdout
    write(folder / "pages.jsonl", [{"id": "p", "page": "DROP", "text": "a\nb", "labels": "B"}])
    bad = subprocess.run([sys.executable, "-m", "cleaning", "annotations", "check", str(folder)], capture_output=True,
                         text=True, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 1 and "pages.jsonl:1: page p: 1 labels for 2 lines" in " ".join(bad.stdout.split())


def test_the_shipped_page_annotations_are_valid() -> None:
    report = check_pages([ROOT / "annotations"])
    assert report.errors == []
    assert {p.verdict for p in report.pages} >= {"KEEP", "DROP"}
