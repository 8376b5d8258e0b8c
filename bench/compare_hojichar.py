"""Compare our `rules` stage with HojiChar's Japanese document filters on the same pages.

Usage (from the project root, with the project's venv):
    .venv/bin/python bench/compare_hojichar.py [--input FILE] [--clean FILE ...] [--repeat 3]

What it does:
  * ours: runs `cleaning run pipelines/ja.yaml --no-ray --set input.shard_mb=1000` (one shard, one
    process) and reads the rules stage's stats.json, kept ids and reject reasons;
  * HojiChar: creates bench/.venv-peers (gitignored) with a pinned hojichar, and runs the worker
    below there in a subprocess: NFKC (DocumentNormalizer) + a Compose of HojiChar's Japanese
    filters with their defaults, single process;
  * compares which documents each keeps on real crawl pages, and how many documents of clean
    text (Wikipedia leads, livedoor news) each wrongly rejects.
HojiChar is never imported here and never becomes a dependency of the project.

Writes bench/results/hojichar-compare-<YYYY-MM-DD>.md (the report, also printed) and .json (raw
numbers) next to it. Throughput figures are MB (1e6 bytes) of UTF-8 text per second.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from peer_venv import PEERS, peer_python  # bench/peer_venv.py (this script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEFAULT_INPUT = SHARED / "data" / "web" / "cc-main-2023-50_ja_pages.jsonl.gz"
DEFAULT_CLEAN = [
    SHARED / "data" / "clean" / "ku_wikipedia_leads.jsonl.gz",
    SHARED / "data" / "clean" / "livedoor_news.jsonl.gz",
]
PIPELINE = ROOT / "pipelines" / "ja.yaml"
CLEANING = ROOT / ".venv" / "bin" / "cleaning"
RESULTS = ROOT / "bench" / "results"
HOJICHAR_VERSION = PEERS["hojichar"]
EXCERPT_CHARS = 150
EXAMPLES = 5
KEPT_OUTPUT = "ours_kept_output"  # dataset label: our kept documents as our rules stage wrote them

# Runs inside bench/.venv-peers (hojichar installed there), never in the project's venv.
# argv[1] is a JSON config: {"datasets": [{"label", "path", "repeat"}], "out": PATH}.
# It writes one JSON result to "out"; progress goes to stderr.
HOJICHAR_WORKER = r'''
import gzip
import json
import platform
import sys
import time
import unicodedata
import warnings
from collections import Counter
from importlib.metadata import version

warnings.filterwarnings("ignore", category=DeprecationWarning)  # Document.set_tokens / Token

from hojichar import Compose, Document
from hojichar.filters import document_filters as df
from hojichar.filters import tokenization as tok

# Text cleaners first (like our line rules), then document filters; HojiChar defaults unless noted.
def build_filters():
    return [
        df.DocumentNormalizer(),                       # NFKC
        tok.SentenceTokenizer(),                       # split on 。 for the next filter
        df.HeaderFooterTagsRemover(),                  # drop header/footer tag sentences at both ends
        tok.MergeTokens(),                             # join the kept sentences back into text
        df.DocumentLengthFilter(min_doc_len=20, max_doc_len=200_000),  # = our doc.too_short / too_long
        df.AcceptJapanese(),
        df.DiscardRareKuten(),
        df.DiscardBBSComments(),
        df.DiscardAds(),
        df.DiscardAdultContentJa(),
        df.DiscardDiscriminationContentJa(),
        df.DiscardViolenceContentJa(),
        df.CharRepetitionRatioFilter(),
        df.SingleCharacterRepetitionFilter(),
        df.DiscardTooManyEndingEllipsis(),
        df.DiscardTooShortLines(),
    ]

TEXT_ONLY = {"DocumentNormalizer", "SentenceTokenizer", "HeaderFooterTagsRemover", "MergeTokens"}
HIDDEN_PARAMS = {"name", "p", "skip_rejected", "use_batch", "batch_size"}

def describe(filters):
    return [
        {"index": i, "class": type(f).__name__,
         "params": {k: v for k, v in f.get_jsonable_vars().items() if k not in HIDDEN_PARAMS}}
        for i, f in enumerate(filters)
    ]

def load(path):
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                rec = json.loads(line)
                docs.append((str(rec.get("id") or f"{path}:{lineno}"), rec.get("text") or ""))
    return docs

def run_compose(docs):
    """HojiChar as documented: Compose.apply per document (with its per-filter statistics)."""
    compose = Compose(build_filters())
    decisions, matched = {}, {}
    t0 = time.perf_counter()
    for doc_id, text in docs:
        d = compose.apply(Document(text))
        decisions[doc_id] = d.reject_reason.get("name", "?") if d.is_rejected else None
        if "matched_text" in d.reject_reason:  # the NG word an NgWordsFilterJa subclass found
            matched[doc_id] = d.reject_reason["matched_text"]
    seconds = time.perf_counter() - t0
    stats = {s["name"]: s for s in compose.get_total_statistics_map()}
    return seconds, decisions, stats, matched

def run_bare(docs):
    """The same filters chained by hand (apply() only, no statistics): the filters' own cost."""
    filters = build_filters()
    names = [f"{i}-{type(f).__name__}" for i, f in enumerate(filters)]
    ns = [0] * len(filters)
    decisions = {}
    clock = time.perf_counter_ns
    t0 = time.perf_counter()
    for doc_id, text in docs:
        d = Document(text)
        decisions[doc_id] = None
        for i, f in enumerate(filters):
            t = clock()
            d = f.apply(d)
            ns[i] += clock() - t
            if d.is_rejected:
                decisions[doc_id] = names[i]
                break
    seconds = time.perf_counter() - t0
    return seconds, decisions, {n: v / 1e9 for n, v in zip(names, ns)}

def run_alone(docs):
    """Each document filter alone on the NFKC text: how many documents it would reject by itself.

    The NG-word filters also run with ignore_confused=True (katakana words only match when not
    inside a longer katakana word), and report the words that matched most often.
    """
    texts = [unicodedata.normalize("NFKC", t) for _, t in docs]
    candidates = []
    for i, f in enumerate(build_filters()):
        if type(f).__name__ not in TEXT_ONLY:
            candidates.append((f"{i}-{type(f).__name__}", f))
        if isinstance(f, df.NgWordsFilterJa):
            candidates.append((f"{i}-{type(f).__name__}(ignore_confused=True)", type(f)(ignore_confused=True)))
    out = {}
    for name, f in candidates:
        words = Counter()
        rejected = 0
        t0 = time.perf_counter()
        for t in texts:
            if f.apply(Document(t)).is_rejected:
                rejected += 1
                if isinstance(f, df.NgWordsFilterJa):
                    words[f.matched_text] += 1
        out[name] = {"rejected": rejected, "seconds": round(time.perf_counter() - t0, 4)}
        if isinstance(f, df.NgWordsFilterJa):
            out[name]["top_words"] = words.most_common(8)
    return out

def main():
    cfg = json.loads(sys.argv[1])
    result = {"hojichar_version": version("hojichar"), "python": platform.python_version(),
              "filters": describe(build_filters()), "datasets": {}}
    for ds in cfg["datasets"]:
        docs = load(ds["path"])
        raw = sum(len(t.encode("utf-8")) for _, t in docs)
        nfkc = sum(len(unicodedata.normalize("NFKC", t).encode("utf-8")) for _, t in docs)
        print(f"hojichar: {ds['label']}: {len(docs)} docs, {raw / 1e6:.1f} MB", file=sys.stderr, flush=True)
        compose_runs, bare_runs = [], []
        decisions = stats = matched = bare_best = None
        for _ in range(ds["repeat"]):
            seconds, decisions, stats, matched = run_compose(docs)
            compose_runs.append(round(seconds, 3))
            seconds, bare_decisions, per_filter = run_bare(docs)
            bare_runs.append(round(seconds, 3))
            if bare_best is None or seconds < bare_best[0]:
                bare_best = (seconds, per_filter)
            if bare_decisions != decisions:
                raise SystemExit("hojichar worker: Compose and the hand-chained filters disagree")
        result["datasets"][ds["label"]] = {
            "path": ds["path"],
            "docs": len(docs),
            "bytes_raw": raw,
            "bytes_nfkc": nfkc,
            "kept": sum(v is None for v in decisions.values()),
            "compose_seconds_runs": compose_runs,
            "bare_seconds_runs": bare_runs,
            "bare_filter_seconds": {k: round(v, 4) for k, v in bare_best[1].items()},
            "first_reject": dict(Counter(v for v in decisions.values() if v is not None).most_common()),
            "compose_stats": stats,
            "alone": run_alone(docs),
            "decisions": decisions,
            "matched_words": matched,
        }
    with open(cfg["out"], "w", encoding="utf-8") as fh:
        json.dump(result, fh, ensure_ascii=False)

main()
'''


def die(msg: str) -> None:
    """Exit with a one-line error."""
    sys.exit(f"compare_hojichar: {msg}")


def sh(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; exit with its stderr if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        die(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr[-4000:]}")
    return proc


# ---------------------------------------------------------------- environment


def git_state() -> dict[str, Any]:
    """HEAD commit and uncommitted changes (read-only git commands)."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return proc.stdout.rstrip("\n") if proc.returncode == 0 else "?"

    # porcelain lines are "XY PATH": the first column may be a space, so nothing is stripped before [3:]
    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=all").splitlines() if line]
    return {"head": git("rev-parse", "HEAD"), "subject": git("log", "-1", "--format=%s"), "uncommitted": dirty}


def code_fingerprint() -> str:
    """sha256 (12 hex) of what our side runs: cleaning/**/*.py, rules/** and the pipeline file.

    Another engineer may edit these while the benchmark runs; a fingerprint taken before and after tells.
    """
    h = hashlib.sha256()
    files = [*(ROOT / "cleaning").rglob("*.py"), *(p for p in (ROOT / "rules").rglob("*") if p.is_file()), PIPELINE]
    for path in sorted(files):
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def machine() -> dict[str, Any]:
    """CPU count and model of this machine."""
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(), "os": platform.platform()}


def read_docs(path: Path) -> dict[str, dict[str, Any]]:
    """id -> {text excerpt, url} of a JSON Lines file, in file order (ids missing: SOURCE:LINE, like ingest)."""
    docs: dict[str, dict[str, Any]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                rec = json.loads(line)
                doc_id = str(rec.get("id") or f"{path}:{lineno}")
                docs[doc_id] = {"excerpt": (rec.get("text") or "")[:EXCERPT_CHARS], "url": rec.get("url", "")}
    return docs


# ---------------------------------------------------------------- ours


def ours_command(path: Path, out: Path) -> list[str]:
    """The `cleaning run` command line measured for one input."""
    return [
        str(CLEANING),
        "run",
        str(PIPELINE),
        "--input",
        str(path),
        "--output",
        str(out),
        "--no-ray",
        "--no-progress",
        "--set",
        "input.shard_mb=1000",
    ]


def run_ours_once(path: Path) -> dict[str, Any]:
    """One fresh run of our pipeline on `path`: timings, the rules stage's stats, per-document decisions.

    Also returns `kept_texts` (id, text after our normalize + line removal) of the kept documents, and
    `details` (id -> reject_detail) of the rejected ones.
    """
    with tempfile.TemporaryDirectory(prefix="cmp-hojichar-") as tmp:
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        sh(ours_command(path, out), cwd=ROOT)
        wall = time.perf_counter() - t0
        rules = json.loads((out / "02-rules" / "stats.json").read_text())
        summary = json.loads((out / "summary.json").read_text())
        decisions: dict[str, str | None] = {}
        details: dict[str, str] = {}
        kept_texts: list[tuple[str, str]] = []
        for shard in sorted((out / "02-rules" / "shards").glob("*.parquet")):
            kept = pq.read_table(shard, columns=["id", "text"]).to_pydict()
            kept_texts += zip(kept["id"], kept["text"], strict=True)
        decisions.update(dict.fromkeys(doc_id for doc_id, _ in kept_texts))
        for shard in sorted((out / "rejects").glob("*/*.parquet")):
            table = pq.read_table(shard, columns=["id", "reject_reason", "reject_detail"]).to_pydict()
            prefix = "" if shard.parent.name == "rules" else f"{shard.parent.name}:"
            for doc_id, reason, detail in zip(table["id"], table["reject_reason"], table["reject_detail"], strict=True):
                decisions[doc_id] = prefix + reason
                details[doc_id] = detail or ""
    return {
        "wall_seconds": round(wall, 3),
        "stage_wall_seconds": {s["stage"]: s["wall_seconds"] for s in summary["stages"]},
        "ingest_bytes": summary["stages"][0]["bytes_in"],
        "rules": {
            **{k: rules[k] for k in ("docs_in", "kept", "rejected", "bytes_in", "seconds", "chars_in", "chars_out")},
            "prepare_seconds": rules.get("prepare_seconds"),  # corpus-wide step; absent in older versions
        },
        "decisions": decisions,
        "details": details,
        "kept_texts": kept_texts,
    }


def run_ours(path: Path, repeat: int) -> dict[str, Any]:
    """Best-of-`repeat` runs (by command wall time); every run's times are kept."""
    runs = []
    for i in range(repeat):
        print(f"ours: {path.name} run {i + 1}/{repeat} …", file=sys.stderr, flush=True)
        runs.append(run_ours_once(path))
    best = min(runs, key=lambda r: r["wall_seconds"])
    if any(r["decisions"] != best["decisions"] for r in runs):
        print("ours: WARNING: runs disagree on decisions (rules changed while measuring?)", file=sys.stderr)
    if len({len(r["decisions"]) for r in runs}) != 1 or len(best["decisions"]) != best["rules"]["docs_in"]:
        die(f"ours: {path.name}: kept + rejected ids do not add up to the documents read")
    best["wall_seconds_runs"] = [r["wall_seconds"] for r in runs]
    best["rules_seconds_runs"] = [r["rules"]["seconds"] for r in runs]
    return best


# ---------------------------------------------------------------- HojiChar


def run_hojichar(python: Path, datasets: list[tuple[str, Path, int]]) -> dict[str, Any]:
    """Run HOJICHAR_WORKER in the peer venv over (label, path, repeat) datasets; return its JSON."""
    with tempfile.TemporaryDirectory(prefix="cmp-hojichar-") as tmp:
        worker = Path(tmp) / "hojichar_worker.py"
        worker.write_text(HOJICHAR_WORKER, encoding="utf-8")
        out = Path(tmp) / "result.json"
        cfg = {"datasets": [{"label": lbl, "path": str(p), "repeat": n} for lbl, p, n in datasets], "out": str(out)}
        proc = subprocess.run([str(python), str(worker), json.dumps(cfg)], cwd=tmp, text=True, stdout=subprocess.PIPE)
        if proc.returncode != 0:
            die(f"the HojiChar worker failed ({proc.returncode}); its stderr is above")
        return json.loads(out.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- comparison and report


def mb_s(nbytes: int, seconds: float) -> float:
    """MB (1e6 bytes) per second."""
    return round(nbytes / 1e6 / seconds, 2) if seconds else float("nan")


def compare(ours: dict[str, str | None], hoji: dict[str, str | None], order: list[str]) -> dict[str, Any]:
    """Overlap counts of kept documents and the ids in each cell, in input order."""
    if set(ours) != set(hoji) or set(ours) != set(order):
        raise SystemExit("compare_hojichar: ours and HojiChar saw different document ids")
    cells: dict[str, list[str]] = {"both_kept": [], "only_ours_kept": [], "only_hojichar_kept": [], "both_rejected": []}
    for doc_id in order:
        o, h = ours[doc_id] is None, hoji[doc_id] is None
        key = "both_kept" if o and h else "only_ours_kept" if o else "only_hojichar_kept" if h else "both_rejected"
        cells[key].append(doc_id)
    return {
        "counts": {k: len(v) for k, v in cells.items()},
        "only_ours_kept_by_hojichar_filter": dict(Counter(hoji[i] for i in cells["only_ours_kept"]).most_common()),
        "only_hojichar_kept_by_our_reason": dict(Counter(ours[i] for i in cells["only_hojichar_kept"]).most_common()),
        "ids": cells,
    }


def pick_examples(ids: list[str], docs: dict[str, dict[str, Any]], n: int = EXAMPLES) -> list[str]:
    """Up to n ids from distinct hosts (first seen in input order), so one site's template pages don't fill the list."""
    seen: set[str] = set()
    picked = []
    for doc_id in ids:
        host = urlsplit(docs[doc_id]["url"]).netloc or doc_id
        if host not in seen:
            seen.add(host)
            picked.append(doc_id)
        if len(picked) == n:
            break
    return picked


def one_line(text: str) -> str:
    """An excerpt fit for a markdown table cell."""
    return text.replace("|", "¦").replace("\r", " ").replace("\n", " ⏎ ").strip()


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def render(res: dict[str, Any], docs: dict[str, dict[str, Any]], excerpts: bool) -> str:
    """The markdown report."""
    main_label = res["input"]["label"]
    o, h = res["ours"][main_label], res["hojichar"]["datasets"][main_label]
    rules = o["rules"]
    cmp_ = res["comparison"]
    fp = res["code_fingerprint"]
    lines = [
        f"# Our `rules` stage vs HojiChar {res['hojichar']['hojichar_version']} — {res['date']}",
        "",
        f"Generated by `bench/compare_hojichar.py`. Input: `{res['input']['path']}` ({h['docs']:,} docs, "
        f"{h['bytes_raw'] / 1e6:.1f} MB of UTF-8 text as crawled, {h['bytes_nfkc'] / 1e6:.1f} MB after NFKC).",
        "",
        "## Setup",
        "",
        f"- ours: git HEAD `{res['git']['head']}` ({res['git']['subject']})"
        + (
            f"; uncommitted changes in the work tree: {', '.join(res['git']['uncommitted'])}"
            if res["git"]["uncommitted"]
            else ""
        ),
        *(
            [f"- **git HEAD moved during the run**, to `{res['git_after']['head']}` ({res['git_after']['subject']})"]
            if res["git_after"]["head"] != res["git"]["head"]
            else []
        ),
        f"- ours, fingerprint of cleaning/**/*.py + rules/** + pipelines/ja.yaml: `{fp['before']}`"
        + ("" if fp["before"] == fp["after"] else f" before, `{fp['after']}` after: **changed during the run**"),
        f"- HojiChar: `hojichar=={res['hojichar']['hojichar_version']}` in `bench/.venv-peers` "
        f"(Python {res['hojichar']['python']}), run in a subprocess, single process",
        f"- machine: {res['machine']['nproc']} CPUs ({res['machine']['cpu']}), Python {res['machine']['python']}, "
        f"{res['machine']['os']}",
        f"- timings are the best of {res['repeat']} runs (all runs are in the JSON)",
        f"- ours, per input: `{' '.join(res['commands']['ours'])}`",
        f"- HojiChar: `{res['commands']['hojichar']}`",
        "",
        "### HojiChar filters used (in this order; defaults unless a parameter is listed as set)",
        "",
    ]
    rows = []
    for f in res["hojichar"]["filters"]:
        params = ", ".join(
            f"{k}={v}" for k, v in f["params"].items() if k not in ("matched_text", "matched_text_neighbor")
        )
        rows.append([f["index"], f"`{f['class']}`", params or "—"])
    lines += table(["#", "filter", "parameters"], rows)
    lines += ["", "Not used: " + "; ".join(f"`{k}` ({v})" for k, v in res["hojichar_not_used"].items()), ""]

    # throughput
    hb = min(h["bare_seconds_runs"])
    hc = min(h["compose_seconds_runs"])
    norm = sum(v for k, v in h["bare_filter_seconds"].items() if k.endswith("-DocumentNormalizer"))
    other = o["wall_seconds"] - sum(o["stage_wall_seconds"].values())
    prep = rules.get("prepare_seconds")
    ours_rows = [
        [
            "ours: rules stage busy time (`seconds` in `02-rules/stats.json`), text after NFKC",
            rules["seconds"],
            f"{rules['bytes_in'] / 1e6:.1f}",
            mb_s(rules["bytes_in"], rules["seconds"]),
        ]
    ]
    if prep is not None:
        ours_rows.append(
            [
                "ours: rules stage incl. its corpus-wide step (`seconds` + `prepare_seconds`)",
                round(rules["seconds"] + prep, 3),
                f"{rules['bytes_in'] / 1e6:.1f}",
                mb_s(rules["bytes_in"], rules["seconds"] + prep),
            ]
        )
        stage_note = (
            f"the rules stage's corpus-wide step (site-repeated lines) took {prep} s and is in its wall time; the "
            f"remaining {other:.2f} s of the command are interpreter start-up, imports and planning."
        )
    else:
        stage_note = (
            f"the remaining {other:.2f} s of the command are interpreter start-up, imports, planning and, in this "
            "version, possibly the rules stage's corpus-wide step (site-repeated lines), which its busy `seconds` "
            "do not include."
        )
    ours_rows.append(
        [
            "ours: whole `cleaning run` (ingest + normalize + rules, incl. startup)",
            o["wall_seconds"],
            f"{o['ingest_bytes'] / 1e6:.1f}",
            mb_s(o["ingest_bytes"], o["wall_seconds"]),
        ]
    )
    lines += [
        "## Throughput (single process)",
        "",
        *table(
            ["what", "seconds", "MB", "MB/s"],
            [
                *ours_rows,
                [
                    "HojiChar: filters without DocumentNormalizer (hand-chained `apply`), text after NFKC",
                    round(hb - norm, 3),
                    f"{h['bytes_nfkc'] / 1e6:.1f}",
                    mb_s(h["bytes_nfkc"], hb - norm),
                ],
                [
                    "HojiChar: all filters incl. NFKC (hand-chained `apply`)",
                    round(hb, 3),
                    f"{h['bytes_raw'] / 1e6:.1f}",
                    mb_s(h["bytes_raw"], hb),
                ],
                [
                    "HojiChar: `Compose.apply` incl. NFKC and its per-filter statistics",
                    round(hc, 3),
                    f"{h['bytes_raw'] / 1e6:.1f}",
                    mb_s(h["bytes_raw"], hc),
                ],
            ],
        ),
        "",
        f"Ours, stage wall seconds in that run: {o['stage_wall_seconds']}; {stage_note} Reading the JSON input "
        "is not timed on the HojiChar side.",
        "",
        "HojiChar time per filter (hand-chained; a document stops at its first rejecting filter):",
        "",
        *table(
            ["filter", "seconds"],
            [[f"`{k}`", v] for k, v in sorted(h["bare_filter_seconds"].items(), key=lambda kv: -kv[1])],
        ),
        "",
    ]

    # kept and reasons
    lines += [
        "## Kept documents and reject reasons",
        "",
        *table(
            ["", "docs in", "kept", "rejected", "kept %"],
            [
                [
                    "ours (rules)",
                    rules["docs_in"],
                    rules["kept"],
                    rules["docs_in"] - rules["kept"],
                    f"{100 * rules['kept'] / rules['docs_in']:.1f}",
                ],
                ["HojiChar", h["docs"], h["kept"], h["docs"] - h["kept"], f"{100 * h['kept'] / h['docs']:.1f}"],
            ],
        ),
        "",
        f"Ours also removed boilerplate lines: {rules['chars_in']:,} chars in, {rules['chars_out']:,} chars out "
        "in kept documents. HojiChar's only text cleaner here (`HeaderFooterTagsRemover`) works on 。-sentences "
        "at the ends of a document.",
        "",
        "Ours, by reason (first rule failed):",
        "",
        *table(["reason", "docs"], sorted(rules["rejected"].items(), key=lambda kv: -kv[1])),
        "",
        "HojiChar, by first rejecting filter, and by each filter alone on the NFKC text:",
        "",
    ]
    lines += table(
        ["filter", "first to reject", "rejects alone", "alone %"],
        [
            [
                f"`{n}`",
                "—" if "(" in n else h["first_reject"].get(n, 0),
                a["rejected"],
                f"{100 * a['rejected'] / h['docs']:.1f}",
            ]
            for n, a in h["alone"].items()
        ],
    )
    lines += [
        "",
        "The `(ignore_confused=True)` rows are not part of the Compose: the same word list where a katakana word "
        "only matches when not inside a longer katakana word. NG words that matched most often (filter alone, "
        "documents per word):",
        "",
    ]
    rows = []
    for label, ds in res["hojichar"]["datasets"].items():
        for n, a in ds["alone"].items():
            if "top_words" in a and "(" not in n:
                rows.append([f"`{label}`", f"`{n}`", ", ".join(f"{w} {k}" for w, k in a["top_words"])])
    lines += [*table(["set", "filter", "top matched words"], rows), ""]

    # overlap
    c = cmp_["counts"]
    lines += [
        "## Overlap",
        "",
        *table(
            ["", "HojiChar kept", "HojiChar rejected"],
            [
                ["ours kept", c["both_kept"], c["only_ours_kept"]],
                ["ours rejected", c["only_hojichar_kept"], c["both_rejected"]],
            ],
        ),
        "",
        f"Agreement: {100 * (c['both_kept'] + c['both_rejected']) / h['docs']:.1f}% of documents.",
        "",
        "Only ours kept — HojiChar's rejecting filter:",
        "",
        *table(["HojiChar filter", "docs"], list(cmp_["only_ours_kept_by_hojichar_filter"].items())),
        "",
        "Only HojiChar kept — our reason:",
        "",
        *table(["our reason", "docs"], list(cmp_["only_hojichar_kept_by_our_reason"].items())),
        "",
    ]
    for key, title in (("only_ours_kept", "Only ours kept"), ("only_hojichar_kept", "Only HojiChar kept")):
        ids = res["examples"][key]
        lines += [f"### Examples: {title.lower()} (distinct sites, first in input order)", ""]
        header = ["id", "our reason", "HojiChar filter"] + (
            [f"original text, first {EXCERPT_CHARS} chars"] if excerpts else []
        )
        rows = []
        for ex in ids:
            ours_cell = ex["ours"] + (f" ({ex['ours_detail']})" if ex["ours_detail"] else "")
            hoji_cell = ex["hojichar"] + (f" (matched {ex['hojichar_word']})" if ex["hojichar_word"] else "")
            row = [f"`{ex['id']}`", ours_cell, hoji_cell]
            if excerpts:
                row.append(one_line(docs[ex["id"]]["excerpt"]))
            rows.append(row)
        lines += [*table(header, rows), ""]

    # clean sets
    lines += ["## Clean text: share of documents rejected (false positives)", ""]
    rows = []
    for label in res["clean_labels"]:
        oc, hc_ = res["ours"][label], res["hojichar"]["datasets"][label]
        n = oc["rules"]["docs_in"]
        top_o = ", ".join(f"{k} {v}" for k, v in sorted(oc["rules"]["rejected"].items(), key=lambda kv: -kv[1])[:4])
        top_h = ", ".join(f"{k} {v}" for k, v in list(hc_["first_reject"].items())[:4])
        rows.append(
            [
                f"`{label}`",
                n,
                f"{n - oc['rules']['kept']} ({100 * (n - oc['rules']['kept']) / n:.1f}%)",
                f"{hc_['docs'] - hc_['kept']} ({100 * (hc_['docs'] - hc_['kept']) / hc_['docs']:.1f}%)",
                top_o or "—",
                top_h or "—",
            ]
        )
    lines += table(
        ["set", "docs", "ours rejects", "HojiChar rejects", "ours: top reasons", "HojiChar: top filters"], rows
    )
    lines += [""]

    k = res["hojichar"]["datasets"][KEPT_OUTPUT]
    lines += [
        "## HojiChar's filters on our output",
        "",
        f"Our {k['docs']:,} kept documents, as the rules stage wrote them (NFKC, boilerplate lines removed), "
        f"through the same HojiChar Compose: it keeps {k['kept']:,} ({100 * k['kept'] / max(k['docs'], 1):.1f}%). "
        "This separates what HojiChar rejects because the crawl text still has its menus from what its document "
        "filters reject in the text we keep.",
        "",
        *table(
            ["filter", "first to reject", "rejects alone", "alone %"],
            [
                [
                    f"`{n}`",
                    "—" if "(" in n else k["first_reject"].get(n, 0),
                    a["rejected"],
                    f"{100 * a['rejected'] / max(k['docs'], 1):.1f}",
                ]
                for n, a in k["alone"].items()
            ],
        ),
        "",
        "## Caveats",
        "",
        "- Our `normalize` stage does more than NFKC (strips invisible characters, collapses spaces, drops empty "
        "lines); HojiChar gets NFKC only (`DocumentNormalizer`).",
        "- Our rules stage removes boilerplate lines before its document rules; HojiChar has no line-level cleaner, "
        "so its document filters (`DiscardRareKuten`, `DiscardTooShortLines`, `DiscardBBSComments`) see menus, "
        "breadcrumbs and footers (see the previous section for what they do with those lines removed).",
        "- HojiChar's NG-word filters match substrings with no word boundary (its own doctest flags アスパラガス); "
        "ours count the share of characters in listed expressions against a threshold.",
        "- `HeaderFooterTagsRemover` works on 。-split sentences (via `SentenceTokenizer`/`MergeTokens`) and, in "
        "this version, a match in the last sentences marks the *first* ones for removal (`doc.tokens[i]` where "
        "`doc.tokens[-(i + 1)]` is meant).",
        "- Our busy `seconds` include loading the rules, reading and writing the shard's parquet and the "
        "conservation checks, and exclude the rules stage's corpus-wide step (site-repeated lines, reported "
        "separately as `prepare_seconds` where the runner records it); HojiChar "
        "timings cover only the filters (documents already in memory). Both are single-process.",
        "- Filters needing `hojichar[all]` extras (fugashi/UniDic, emoji) are not run; see 'Not used' above.",
        "",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse arguments, run both sides, compare, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT, help="crawl pages, JSON Lines (.gz)")
    parser.add_argument("--clean", type=Path, nargs="*", default=DEFAULT_CLEAN, help="clean sets (false positives)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs on --input; the fastest is reported")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the .md and .json results")
    parser.add_argument(
        "--excerpts",
        action="store_true",
        help="quote 150 characters of each example page in the report: ../shared text, so never commit such a report",
    )
    args = parser.parse_args()

    missing = [p for p in [args.input, *args.clean] if not p.is_file()]
    if missing:
        hint = (
            "" if SHARED.is_dir() else f" ({SHARED} is missing: this benchmark needs the shared data beside the repo)"
        )
        die(f"input not found: {', '.join(map(str, missing))}{hint}")
    if not CLEANING.exists():
        die(f"{CLEANING} not found: run `make venv` first")
    if args.repeat < 1:
        die("--repeat must be at least 1")

    python = peer_python()
    fingerprint_before, git_before = code_fingerprint(), git_state()
    labels = {args.input: args.input.name.removesuffix(".jsonl.gz")}
    labels.update({p: p.name.removesuffix(".jsonl.gz") for p in args.clean})
    if len(set(labels.values())) != len(labels):
        die("inputs must have distinct file names")

    ours = {labels[args.input]: run_ours(args.input, args.repeat)}
    for p in args.clean:
        ours[labels[p]] = run_ours(p, 1)
    main_label = labels[args.input]
    print("hojichar: running in the peer venv …", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="cmp-hojichar-") as tmp:
        # Our kept documents after our line removal, to see what HojiChar's document filters make of them.
        kept_path = Path(tmp) / f"{KEPT_OUTPUT}.jsonl.gz"
        with gzip.open(kept_path, "wt", encoding="utf-8") as fh:
            for doc_id, text in ours[main_label]["kept_texts"]:
                fh.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
        datasets = [(main_label, args.input, args.repeat), *((labels[p], p, 1) for p in args.clean)]
        hoji = run_hojichar(python, [*datasets, (KEPT_OUTPUT, kept_path, 1)])
    for entry in ours.values():
        entry.pop("kept_texts")

    hoji["datasets"][KEPT_OUTPUT]["path"] = "temporary file: the text column of our 02-rules/shards"
    fingerprint_after = code_fingerprint()
    if fingerprint_after != fingerprint_before:
        print("WARNING: cleaning/ or rules/ changed while the benchmark ran", file=sys.stderr)
    docs = read_docs(args.input)
    comparison = compare(ours[main_label]["decisions"], hoji["datasets"][main_label]["decisions"], list(docs))
    today = date.today().isoformat()
    res: dict[str, Any] = {
        "date": today,
        "git": git_before,  # what was measured: taken before the first run
        "git_after": git_state(),
        "code_fingerprint": {"before": fingerprint_before, "after": fingerprint_after},
        "machine": machine(),
        "repeat": args.repeat,
        "input": {"label": main_label, "path": str(args.input)},
        "clean_labels": [labels[p] for p in args.clean],
        "commands": {
            "ours": ours_command(Path("INPUT"), Path("TMPDIR")),
            "hojichar": f"{python.relative_to(ROOT)} WORKER.py CONFIG_JSON "
            f"(WORKER.py = HOJICHAR_WORKER in this script, hojichar=={HOJICHAR_VERSION})",
        },
        "hojichar_not_used": {
            "DiscardTooManyNouns": "needs fugashi + a UniDic dictionary (hojichar[all]); not installed",
            "WordRepetitionRatioFilter": "needs fugashi (hojichar[all]); not installed",
            "DiscardTooManySpecialToken": "needs emoji (hojichar[all]); not installed",
            "MaskPersonalInformation": "masks text, rejects nothing",
            "SEOTokenRemover": "token filter with an opaque legacy regex",
            "NgWordsFilterJa": "needs a word list; its Adult/Discrimination/Violence subclasses are used",
        },
        "ours": ours,
        "hojichar": hoji,
        "comparison": comparison,
        "examples": {
            k: [
                {
                    "id": i,
                    "ours": ours[main_label]["decisions"][i] or "kept",
                    "ours_detail": ours[main_label]["details"].get(i, ""),
                    "hojichar": hoji["datasets"][main_label]["decisions"][i] or "kept",
                    "hojichar_word": hoji["datasets"][main_label]["matched_words"].get(i, ""),
                }
                for i in pick_examples(comparison["ids"][k], docs)
            ]
            for k in ("only_ours_kept", "only_hojichar_kept")
        },
    }
    report = render(res, docs, excerpts=args.excerpts)
    print(report)

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"hojichar-compare-{today}"
    (stem.with_suffix(".md")).write_text(report, encoding="utf-8")
    # The JSON keeps numbers and ids only: per-document decisions are summarised, not dumped.
    slim = json.loads(json.dumps(res))
    for side in (slim["ours"], slim["hojichar"]["datasets"]):
        for entry in side.values():
            entry.pop("decisions", None)
            entry.pop("details", None)
            entry.pop("matched_words", None)
    slim["comparison"].pop("ids")
    (stem.with_suffix(".json")).write_text(json.dumps(slim, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {stem}.md and {stem}.json", file=sys.stderr)


if __name__ == "__main__":
    main()
