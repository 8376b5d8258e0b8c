"""Build the balance report of a finished run: per-cluster table (Parquet, CSV) and one HTML file.

Reads the genres stage's output shards (statistics per cluster, computed per shard in parallel),
the rejects of later stages (what dedup and balance removed per cluster), the run's summary
(corpus size by stage), and a weights file (the corpus mix before and after weighting).
"""

from __future__ import annotations

import csv
import json
import pickle
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cleaning.errors import CleaningError
from cleaning.genres.weights import Weights, check_model, load_weights
from cleaning.report import summarize as sm
from cleaning.report.words import distinctive_words, name_of
from cleaning.shards import file_hash, read_json, write_json_atomic
from cleaning.stage import fingerprint
from cleaning.stats import final_shards

_STAGE_DIR = re.compile(r"^(\d\d)-([\w.-]+)$")
TERM_CHARS = 12_000_000  # sampled characters for distinctive terms over all clusters


@dataclass
class Flags:
    """When a cluster is flagged for a data lead's attention (thresholds, not code)."""

    ad_per_1k_chars: float = 1.5  # ad/shop vocabulary hits per 1,000 characters
    list_prose_share: float = 0.35  # below this share of characters in sentence-like lines: word list / listing
    tiny_docs: int = 5  # fewer documents than this
    host_share: float = 0.5  # one host holds more than this share of the documents…
    host_min_docs: int = 10  # …of a cluster at least this large
    noisy_share: float = 0.3  # expected share of noise (mean calibrated P(noise) of the kept documents)

    def of(self, row: dict[str, Any]) -> list[str]:
        flags = []
        if row["ads_per_1k"] >= self.ad_per_1k_chars:
            flags.append("ad-heavy")
        if row["prose_share"] < self.list_prose_share:
            flags.append("list-like")
        if row["docs"] < self.tiny_docs:
            flags.append("tiny")
        if row["docs"] >= self.host_min_docs and row["top_host_share"] > self.host_share:
            flags.append("one-host")
        if row["noisy_share"] is not None and row["noisy_share"] > self.noisy_share:
            flags.append("noisy")
        return flags


@dataclass
class ReportOptions:
    output: Path
    dest: Path | None = None  # default OUTPUT/report
    weights: Path | None = None  # default: the run's balance stage weights, if any
    chars_per_token: float = 0.0  # 0 = measured by the run's tokenize stage, else 2.2 (a typical Japanese ratio)
    flags: Flags = field(default_factory=Flags)


@dataclass
class RunLayout:
    """Where a finished run keeps what the report reads."""

    output: Path
    genres_dir: Path
    later_stages: list[str]
    summary: dict[str, Any]
    run: dict[str, Any]

    @classmethod
    def find(cls, output: Path) -> RunLayout:
        output = output.resolve()
        if not (output / "run.json").is_file():
            raise CleaningError(f"{output} holds no cleaning run (no run.json)")
        if not (output / "summary.json").is_file():
            raise CleaningError(f"{output}: the run has not finished (no summary.json); rerun `cleaning run` first")
        dirs = sorted((m.group(2), p) for p in output.iterdir() if (m := _STAGE_DIR.match(p.name)) and p.is_dir())
        dirs.sort(key=lambda item: item[1].name)
        names = [name for name, _ in dirs]
        if "genres" not in names:
            raise CleaningError(f"{output}: the run has no genres stage; add `- stage: genres` to the pipeline")
        index = names.index("genres")
        return cls(
            output,
            dirs[index][1],
            names[index + 1 :],
            read_json(output / "summary.json"),
            read_json(output / "run.json"),
        )

    @property
    def artifacts(self) -> Path:
        return self.genres_dir / "_prepare" / "artifacts"

    def quality_threshold(self) -> float | None:
        """The P(noise) above which the run's quality stage rejected documents (its config, else its model card)."""
        for stage in self.run.get("stages", []):
            if stage.get("stage") != "quality":
                continue
            if stage.get("threshold") is not None:
                return float(stage["threshold"])
            model = Path(stage["model"]) if stage.get("model") else None
            cards = (
                [model.with_suffix(".card.json")]
                if model
                else sorted(self.output.glob("*-quality/_prepare/artifacts/*.card.json"))
            )
            for card in cards:
                if card.is_file():
                    return float(read_json(card)["threshold"])
        return None

    def run_weights(self) -> Path | None:
        for stage in self.run.get("stages", []):
            if stage.get("stage") == "balance":
                return Path(stage["weights"])
        return None


def measured_chars_per_token(output: Path) -> float | None:
    """Characters per token of the corpus as the run's tokenizer cut it (tokens/manifest.json)."""
    manifest = output / "tokens" / "manifest.json"
    return read_json(manifest).get("chars_per_token") or None if manifest.is_file() else None


def build_report(options: ReportOptions, mapper: Any, log: Any = print) -> dict[str, Any]:
    """Write index.html, clusters.parquet/csv, domains.csv and report.json; return the overview."""
    started = time.perf_counter()
    layout = RunLayout.find(options.output)
    if not options.chars_per_token:
        options = replace(options, chars_per_token=measured_chars_per_token(layout.output) or 2.2)
    weights_path = options.weights or layout.run_weights()
    dest = (options.dest or layout.output / "report").resolve()
    run_key = _run_key(layout, options)
    weights_key = file_hash(weights_path) if weights_path and weights_path.is_file() else str(weights_path)
    key = fingerprint([run_key, weights_key])
    before = _up_to_date(dest, key)
    if before is not None:
        log(f"up to date with the run and weights ({dest / 'index.html'})")
        return before
    domain_of = np.load(layout.artifacts / "domain_of.npy")
    k = len(domain_of)
    info = read_json(layout.artifacts / "genres.json")
    weights = load_weights(weights_path) if weights_path else Weights()
    model = (info.get("model") or {}).get("id")
    check_model(weights, weights_path or "", {model} if model else set())  # a preview for other clusters misleads
    cached = _cached_summary(dest, run_key)
    if cached is not None:  # only the weights changed: the preview takes seconds
        log("the run is unchanged since the last report: reusing its cluster summary, applying the new weights")
        summary, terms = cached
    else:
        summary, terms = _summarise(layout, k, mapper, log)
        _keep_summary(dest, run_key, summary, terms)
    rows = cluster_rows(summary, domain_of, terms, weights, options)
    domains = domain_rows(rows)
    overview = _overview(layout, summary, rows, info, weights, weights_path, options)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "report.json").unlink(missing_ok=True)  # an interrupted rebuild must not look complete
    _write_tables(dest, rows, domains)
    from cleaning.report.html import render

    html = render(overview, rows, domains)
    (dest / "index.html").write_text(html, encoding="utf-8")
    overview["files"] = {
        "html": str(dest / "index.html"),
        "html_bytes": len(html.encode()),
        "clusters": str(dest / "clusters.parquet"),
    }
    overview["seconds"] = round(time.perf_counter() - started, 2)
    overview["key"] = key
    write_json_atomic(dest / "report.json", overview)  # last: it marks the report complete
    return overview


REPORT_FILES = ("index.html", "clusters.parquet", "clusters.csv", "domains.csv")


def _summarise(layout: RunLayout, k: int, mapper: Any, log: Any) -> tuple[sm.Summary, list[list[str]]]:
    """Per-cluster statistics of the genres stage's output and each cluster's distinctive terms."""
    final = final_shards(layout.output, layout.summary)
    later = [layout.output / "rejects" / stage for stage in layout.later_stages]
    rejects = [p for folder in later for p in sorted(folder.glob("*.parquet"))]
    shards = [*sorted(final.glob("*.parquet")), *rejects]
    log(f"summarising {len(shards)} files (final shards, and what later stages removed) of {k:,} clusters …")
    summary = sm.Summary(k)
    for part in mapper(sm.summarize_shard, [sm.ShardJob(p, k) for p in shards], "summarise clusters"):
        summary.merge(part)
    log("finding distinctive terms …")
    budget = int(min(18_000, max(1_500, TERM_CHARS / max(k, 1))))  # bounded work at 10,000 clusters
    docs = [_within([t for _, t in summary.sample.get(c, [])], budget) for c in range(k)]
    return summary, distinctive_words(docs, mapper=mapper)


def _within(texts: list[str], budget: int) -> list[str]:
    """The texts in order, the last one cut, so they hold at most `budget` characters together."""
    out = []
    for text in texts:
        if budget <= 0:
            break
        out.append(text[:budget])
        budget -= len(out[-1])
    return out


SUMMARY_CACHE = ".summary.pkl"  # in the report folder: what does not depend on the weights


def _cached_summary(dest: Path, run_key: str) -> tuple[sm.Summary, list[list[str]]] | None:
    try:
        with (dest / SUMMARY_CACHE).open("rb") as f:
            key, summary, terms = pickle.load(f)  # written by this package, next to the report it made
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError, TypeError):
        return None
    return (summary, terms) if key == run_key else None


def _keep_summary(dest: Path, run_key: str, summary: sm.Summary, terms: list[list[str]]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / (SUMMARY_CACHE + ".tmp")
    with tmp.open("wb") as f:
        pickle.dump((run_key, summary, terms), f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(dest / SUMMARY_CACHE)


def _run_key(layout: RunLayout, options: ReportOptions) -> str:
    """What the report is made of apart from the weights: the run's stage manifests (every shard's
    content hash), counts, genre artifacts, tokens manifest, the options and this package's code."""
    out = layout.output
    parts = [repr(replace(options, output=out, weights=None))]
    parts += [f"{p.relative_to(out)}={file_hash(p)}" for p in sorted(out.glob("[0-9][0-9]-*/manifest.json"))]
    parts += [f"{p.name}={file_hash(p)}" for p in sorted(layout.artifacts.glob("*")) if p.is_file()]
    tokens = out / "tokens" / "manifest.json"
    parts.append(file_hash(tokens) if tokens.is_file() else "")
    parts.append(json.dumps(layout.summary.get("conservation"), sort_keys=True))
    code = Path(__file__).parent
    parts += [f"{p.name}={file_hash(p)}" for p in [*sorted(code.glob("*.py")), code / "template.html"]]
    return fingerprint(parts)


def _up_to_date(dest: Path, key: str) -> dict[str, Any] | None:
    """The last report's overview if it was built from the same inputs and all its files are there."""
    try:
        overview = read_json(dest / "report.json")
    except (OSError, ValueError):
        return None
    if overview.get("key") != key or not all((dest / name).is_file() for name in REPORT_FILES):
        return None
    return {**overview, "up_to_date": True}


def cluster_rows(
    s: sm.Summary, domain_of: np.ndarray, terms: list[list[str]], weights: Weights, options: ReportOptions
) -> list[dict[str, Any]]:
    total_docs, total_chars = max(1, int(s.docs.sum())), max(1, int(s.chars.sum()))
    w = weights.per_cluster(domain_of)
    after = s.chars * w
    total_after = max(1e-9, float(after.sum()))
    snippet_count, snippet_chars = (sm.SNIPPETS, sm.SNIPPET_CHARS) if len(domain_of) <= 1000 else (3, 120)
    removed_by: dict[int, dict[str, int]] = {}
    for (cl, stage, reason), n in sorted(s.removed.items()):
        label = reason if reason.startswith(f"{stage}.") else f"{stage}:{reason}"  # dedup.exact, not dedup:dedup.exact
        removed_by.setdefault(cl, {})[label] = removed_by.get(cl, {}).get(label, 0) + n
    rows = []
    for c in range(len(domain_of)):
        docs, chars = int(s.docs[c]), int(s.chars[c])
        hosts = s.hosts.get(c)
        top_hosts = hosts.most_common(5) if hosts else []
        removed = removed_by.get(c, {})
        dup = sum(n for key, n in removed.items() if key.startswith(("dedup.", "dedup:")))
        scored = int(s.scored[c])
        row = {
            "cluster": c,
            "domain": int(domain_of[c]),
            "docs": docs,
            "final_docs": int(s.final_docs[c]),
            "doc_share": docs / total_docs,
            "chars": chars,
            "char_share": chars / total_chars,
            "est_tokens": round(chars / options.chars_per_token),
            "quality_mean": float(s.q_sum[c] / scored) if scored else None,
            "quality_median": _median(s.q_hist[c]) if scored else None,
            "noisy_share": float(s.q_sum[c] / scored) if scored else None,  # calibrated: expected noise share
            "ads_per_1k": 1000 * float(s.ad_hits[c]) / max(1, chars),
            "prose_share": float(s.prose_chars[c]) / max(1, chars),
            "mean_line_chars": chars / max(1, int(s.lines[c])),
            "no_token_docs": int(s.no_tokens[c]),
            "top_hosts": [[h, n] for h, n in top_hosts],
            "top_host_share": top_hosts[0][1] / docs if top_hosts and docs else 0.0,
            "name": name_of(terms[c]),
            "terms": terms[c],
            "snippets": [[doc_id, text[:snippet_chars]] for _, doc_id, text in s.snippets.get(c, [])[:snippet_count]],
            "removed_later": removed,
            "dup_rate": dup / docs if docs else 0.0,
            "weight": float(w[c]),
            "share_after": float(after[c] / total_after),
        }
        row["flags"] = options.flags.of(row)
        rows.append(row)
    return rows


def domain_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        d = out.setdefault(
            r["domain"],
            {
                "domain": r["domain"],
                "clusters": 0,
                "docs": 0,
                "chars": 0,
                "share_after": 0.0,
                "doc_share": 0.0,
                "char_share": 0.0,
                "terms": [],
            },
        )
        d["clusters"] += 1
        for key in ("docs", "chars", "share_after", "doc_share", "char_share"):
            d[key] += r[key]
        if len(d["terms"]) < 8:
            d["terms"] += [t for t in r["terms"][:2] if t not in d["terms"]]
    return [out[d] for d in sorted(out)]


def _median(hist: np.ndarray) -> float:
    cum = np.cumsum(hist)
    return float((np.searchsorted(cum, cum[-1] / 2) + 0.5) / sm.Q_BINS)


def _overview(
    layout: RunLayout,
    s: sm.Summary,
    rows: list[dict[str, Any]],
    info: dict[str, Any],
    weights: Weights,
    weights_path: Path | None,
    options: ReportOptions,
) -> dict[str, Any]:
    stages = [
        {
            "stage": st["stage"],
            "docs_in": st["docs_in"],
            "kept": st["kept"],
            "chars_out": st["chars_out"],
            "rejected": st["rejected"],
        }
        for st in layout.summary["stages"]
    ]
    kept_hist = s.q_hist.sum(axis=0)
    rejected_scores = _quality_rejects(layout.output)
    rejected_hist = np.histogram(rejected_scores, bins=sm.Q_BINS, range=(0, 1))[0] if len(rejected_scores) else None
    tokens = _tokens_written(layout.output)
    return {
        "output": str(layout.output),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "genre_model": (info.get("model") or {}).get("id"),
        "k": len(rows),
        "domains": len({r["domain"] for r in rows}),
        "docs": int(s.final_docs.sum()),  # the final output; weights may repeat some in the token files
        "chars": int(s.final_chars.sum()),
        "docs_clustered": int(s.docs.sum()),  # what genres kept, before dedup and balance removed some
        "est_tokens": tokens if tokens is not None else round(int(s.final_chars.sum()) / options.chars_per_token),
        "tokens_measured": tokens is not None,
        "chars_per_token": options.chars_per_token,
        "noise_threshold": layout.quality_threshold(),
        "stages": stages,
        "conservation": layout.summary.get("conservation", {}),
        "genres": {key: info.get(key) for key in ("documents", "params", "training")}
        | {"fit": {k: v for k, v in (info.get("fit") or {}).items() if k != "fit_sizes"}},
        "quality_hist": {
            "kept": kept_hist.tolist(),
            "rejected": rejected_hist.tolist() if rejected_hist is not None else None,
        },
        "weights": {
            "path": str(weights_path) if weights_path else None,
            "identity": weights.is_identity,
            "default": weights.default,
            "domains": weights.domains,
            "clusters": weights.clusters,
        },
        "flags": {
            name: sum(name in r["flags"] for r in rows)
            for name in ("ad-heavy", "list-like", "tiny", "one-host", "noisy")
        },
        "flag_rules": options.flags.__dict__,
        "dedup": _dedup_summary(layout.output),
    }


def _tokens_written(output: Path) -> int | None:
    """Tokens of this corpus in the run's token files (repeats included, extra corpora not), if written."""
    manifest = output / "tokens" / "manifest.json"
    if not manifest.is_file():
        return None
    info = read_json(manifest)
    extra = {e["corpus"] for e in info.get("extra_files", [])}
    groups = [g for g in (info.get("groups") or {}).values() if g.get("corpus") not in extra]
    return sum(int(g["tokens"]) for g in groups) if groups else None


def _dedup_summary(output: Path) -> dict[str, Any] | None:
    """What the dedup stage found: duplicate groups by size and the most duplicated hosts."""
    found = sorted(output.glob("*-dedup/_prepare/artifacts/dedup.json"))
    if not found:
        return None
    info = read_json(found[-1])
    keys = ("documents", "removed_exact", "removed_near", "components", "hosts", "bands", "rows", "threshold")
    return {key: info.get(key) for key in keys}


def _quality_rejects(output: Path) -> np.ndarray:
    files = sorted((output / "rejects" / "quality").glob("*.parquet"))
    if not files:
        return np.empty(0)
    return np.concatenate([pq.read_table(f, columns=["quality_score"])["quality_score"].to_numpy() for f in files])


_FLAT = [
    "cluster",
    "name",
    "domain",
    "docs",
    "final_docs",
    "doc_share",
    "chars",
    "char_share",
    "est_tokens",
    "quality_mean",
    "quality_median",
    "noisy_share",
    "ads_per_1k",
    "prose_share",
    "mean_line_chars",
    "no_token_docs",
    "top_host_share",
    "dup_rate",
    "weight",
    "share_after",
]


def _write_tables(dest: Path, rows: list[dict[str, Any]], domains: list[dict[str, Any]]) -> None:
    """The same cluster table for tools: Parquet (lists kept) and CSV (lists joined by ' | ')."""
    table = pa.Table.from_pylist(
        [
            {
                **{k: r[k] for k in _FLAT},
                "flags": r["flags"],
                "terms": r["terms"],
                "top_hosts": [h for h, _ in r["top_hosts"]],
                "removed_later": json.dumps(r["removed_later"]),
                "snippet_ids": [i for i, _ in r["snippets"]],
            }
            for r in rows
        ]
    )
    pq.write_table(table, dest / "clusters.parquet", compression="zstd")
    with (dest / "clusters.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*_FLAT, "flags", "terms", "top_hosts"])
        for r in rows:
            writer.writerow(
                [
                    *(r[k] for k in _FLAT),
                    " | ".join(r["flags"]),
                    " | ".join(r["terms"]),
                    " | ".join(h for h, _ in r["top_hosts"]),
                ]
            )
    with (dest / "domains.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["domain", "clusters", "docs", "doc_share", "chars", "char_share", "share_after", "terms"])
        for d in domains:
            writer.writerow(
                [
                    d["domain"],
                    d["clusters"],
                    d["docs"],
                    d["doc_share"],
                    d["chars"],
                    d["char_share"],
                    d["share_after"],
                    " | ".join(d["terms"]),
                ]
            )
