"""Per-stage statistics: add up shard markers, check conservation, render the summary table."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from cleaning.errors import CleaningError, ConservationError
from cleaning.remote import is_url
from cleaning.shards import read_json


def aggregate(
    stage: str, markers: list[dict[str, Any]], wall: float, fresh_bytes: int, prepare_seconds: float = 0.0
) -> dict[str, Any]:
    """One stage's stats.json from its shard markers; raises if any count fails to add up."""
    total: dict[str, Any] = {"docs_in": 0, "kept": 0, "chars_in": 0, "chars_out": 0, "bytes_in": 0, "seconds": 0.0}
    rejected: Counter[str] = Counter()
    counters: Counter[str] = Counter()
    for marker in markers:
        s = marker["stats"]
        shard_rejected = sum(s["rejected"].values())
        if s["docs_in"] != s["kept"] + shard_rejected:
            names = [o["path"] for o in marker["outputs"]]
            raise ConservationError(
                f"{stage} {names}: {s['docs_in']} in != {s['kept']} kept + {shard_rejected} rejected"
            )
        for k in total:
            total[k] += s[k]
        rejected.update(s["rejected"])
        counters.update(s["counters"])
    total["rejected"] = dict(sorted(rejected.items()))
    total["rejected_total"] = sum(rejected.values())
    total["counters"] = dict(sorted(counters.items()))
    total["shards"] = sum(len(m["outputs"]) for m in markers)
    total["wall_seconds"] = round(wall, 3)  # includes the corpus-wide step
    total["prepare_seconds"] = round(prepare_seconds, 3)
    total["seconds"] = round(total["seconds"], 3)
    # the largest unit; 0 when every unit was resumed from markers written before this was recorded
    total["peak_rss_mb"] = max((m["stats"].get("peak_rss_mb", 0.0) for m in markers), default=0.0)
    total["fresh_bytes"] = fresh_bytes
    total["stage"] = stage
    return total


def check_chain(stages: list[dict[str, Any]]) -> None:
    """Every stage reads exactly what the one before it kept."""
    for before, after in itertools.pairwise(stages):
        if before["kept"] != after["docs_in"]:
            raise ConservationError(
                f"stage {after['stage']!r} read {after['docs_in']} documents "
                f"but {before['stage']!r} kept {before['kept']}"
            )


def load_summary(output: Path | str) -> dict[str, Any]:
    if is_url(str(output)):
        return _remote_summary(str(output))
    path = Path(output) / "summary.json"
    if not path.is_file():
        raise CleaningError(f"no finished run in {output} (missing summary.json); run `cleaning run` first")
    return read_json(path)


def final_shards(output: Path, summary: dict[str, Any]) -> Path:
    """The last stage's shards of the run in `output`. summary.json names them where the run wrote
    them (an s3:// URL, or a folder since moved or copied), so only the stage folder is taken from it."""
    named = PurePosixPath(summary["final_shards"])
    return output / named.parent.name / "shards" if named.name == "shards" else output


def _remote_summary(url: str) -> dict[str, Any]:
    from cleaning.remote import error_reason, filesystem

    fs, root = filesystem(url.rstrip("/") + "/summary.json")
    try:
        with fs.open(root, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise CleaningError(f"no finished run in {url} (missing summary.json); run `cleaning run` first") from None
    except Exception as exc:
        raise CleaningError(f"cannot read {url}/summary.json: {error_reason(exc)}") from exc


def render(summary: dict[str, Any], console: Console) -> None:
    """The table a data engineer reads at the end of a run (and again with `cleaning stats`)."""
    table = _table(f"cleaning run: {summary['output']}")
    for col in (
        "stage",
        "shards",
        "docs in",
        "kept",
        "rejected",
        "chars in",
        "out",
        "wall s",
        "MB/s",
        "MB/s/core",
        "peak MB",
    ):
        table.add_column(
            col, justify="left" if col == "stage" else "right", min_width=9 if col == "stage" else len(col)
        )
    for s in summary["stages"]:
        fresh = s["fresh_bytes"]
        mbs = f"{fresh / 1e6 / s['wall_seconds']:.2f}" if fresh and s["wall_seconds"] else "resumed"
        core = f"{s['bytes_in'] / 1e6 / s['seconds']:.2f}" if s["seconds"] else "-"
        table.add_row(
            s["stage"],
            f"{s['shards']:,}",
            f"{s['docs_in']:,}",
            f"{s['kept']:,}",
            f"{s['rejected_total']:,}",
            _human(s["chars_in"]),
            _human(s["chars_out"]),
            f"{s['wall_seconds']:.1f}",
            mbs,
            core,
            f"{s.get('peak_rss_mb', 0):,.0f}" if s.get("peak_rss_mb") else "-",
        )
    console.print(table)
    console.print(
        "MB/s: text bytes per wall second this run; MB/s/core: per busy worker second (all shards); "
        "peak MB: largest resident memory of a worker on one shard"
    )
    reasons = [(s["stage"], k, v) for s in summary["stages"] for k, v in s["rejected"].items()]
    _print_counts(console, "rejected documents by reason", ("stage", "reason", "docs"), reasons)
    _print_edits(console, summary["stages"])
    c = summary["conservation"]
    console.print(
        f"conservation: {c['records_in']:,} input records = {c['kept']:,} kept + {c['rejected']:,} rejected "
        f"(rejects in {summary['output']}/rejects/)  [green]ok[/green]"
    )
    console.print(f"output: {summary['final_shards']}")


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)


def _print_counts(
    console: Console, title: str, columns: tuple[str, str, str], rows: list[tuple[str, str, int]]
) -> None:
    """A small stage / name / count table, printed only when it has rows."""
    if not rows:
        return
    table = _table(title)
    table.add_column(columns[0])
    table.add_column(columns[1])
    table.add_column(columns[2], justify="right")
    for stage, name, count in rows:
        table.add_row(stage, name, f"{count:,}")
    console.print(table)


def _print_edits(console: Console, stages: list[dict[str, Any]]) -> None:
    """Counters named KIND.NAME (lines_removed.menu.block, chars_removed.menu.block) as one row per
    NAME with a column per KIND; plain counters (empty_lines_removed) get the column "count". Counters
    that are not edits (tokens written, repeated copies) go to a table of their own."""
    rows: dict[tuple[str, str], dict[str, int]] = {}
    other: list[tuple[str, str, int]] = []
    for s in stages:
        for key, value in s["counters"].items():
            if "removed" not in key:
                other.append((s["stage"], key, value))
                continue
            kind, dot, name = key.partition(".")
            kind, name = (kind, name) if dot else ("count", key)
            rows.setdefault((s["stage"], name), {})[kind] = value
    _print_counts(console, "other counts", ("stage", "what", "count"), other)
    if not rows:
        return
    kinds = sorted({k for counts in rows.values() for k in counts})
    table = _table("edits inside documents (line-level rules and normalisation)")
    table.add_column("stage")
    table.add_column("what")
    for kind in kinds:
        table.add_column(kind.replace("_", " "), justify="right")
    for (stage, name), counts in rows.items():
        table.add_row(stage, name, *(f"{counts[k]:,}" if k in counts else "" for k in kinds))
    console.print(table)


def _human(n: int) -> str:
    """10432771 -> 10.4M: keeps the table narrow enough for an 80-column terminal."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
