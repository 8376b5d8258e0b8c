"""The document record every stage reads and writes, and its Arrow form on disk."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

#: Columns every shard has, in this order; stages append their own columns after these.
BASE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),  # input file, relative to the common root of the inputs
        ("line", pa.int64()),  # 1-based line (or row) of the record in that file
        ("url", pa.string()),
        ("meta", pa.string()),  # every other input field, as a JSON object
    ]
)

#: Columns added to a document's own columns in a rejects file.
REJECT_FIELDS = [("reject_stage", pa.string()), ("reject_reason", pa.string()), ("reject_detail", pa.string())]


@dataclass(slots=True)
class Doc:
    """One document. `fields` holds every column except id and text (source, url, stage scores…)."""

    id: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BadRecord:
    """A record (or the rest of a file) that could not become a document, and why. `warn` is false for
    pages a WARC reader leaves out by design (not Japanese, not HTML, HTTP errors): they are counted
    and quarantined like the rest but not printed, since they are most of a general crawl."""

    line: int
    reason: str
    detail: str
    raw: str = ""
    warn: bool = True


@dataclass(slots=True)
class Reject:
    """A stage's verdict that removes `doc`: `reason` is a stable rule id, `detail` a human note."""

    doc: Doc
    reason: str
    detail: str = ""


@dataclass(slots=True)
class StageResult:
    """What a stage returns for one batch: every input document is in exactly one of kept/rejected."""

    kept: list[Doc] = field(default_factory=list)
    rejected: list[Reject] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)


def docs_from_table(table: pa.Table | pa.RecordBatch) -> list[Doc]:
    """Turn Arrow rows into documents (one Python object per row: stages work per document)."""
    docs = []
    for row in table.to_pylist():
        doc_id = row.pop("id")
        text = row.pop("text")
        docs.append(Doc(doc_id, text, row))
    return docs


def docs_to_table(docs: list[Doc], schema: pa.Schema) -> pa.Table:
    """Turn documents back into Arrow rows with a fixed schema, so every shard of a stage matches."""
    rows = [{"id": d.id, "text": d.text, **d.fields} for d in docs]
    return pa.Table.from_pylist(rows, schema=schema)


def rejects_to_table(rejects: list[Reject], stage: str, schema: pa.Schema) -> pa.Table:
    """Rejected documents keep all their columns plus who removed them and why."""
    rows = [
        {
            "id": r.doc.id,
            "text": r.doc.text,
            **r.doc.fields,
            "reject_stage": stage,
            "reject_reason": r.reason,
            "reject_detail": r.detail,
        }
        for r in rejects
    ]
    return pa.Table.from_pylist(rows, schema=reject_schema(schema))


def reject_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of a rejects file for documents of `schema`."""
    for name, typ in REJECT_FIELDS:
        if schema.get_field_index(name) < 0:
            schema = schema.append(pa.field(name, typ))
    return schema
