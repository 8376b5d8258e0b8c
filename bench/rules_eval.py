"""Evaluate the rules stage on real pages and on clean text (numbers for the rules issue).

Usage: python bench/rules_eval.py [--review 50]
Runs normalize + rules in-process on ../shared/data/web/cc-main-2023-50_ja_pages.jsonl.gz and on the
clean sets, then reports: pages with a breadcrumb / menu / footer before and after (an independent
detector, below), documents rejected and characters removed per rule, the share of clean documents
rejected and clean characters removed, the stage's throughput (whole stage per busy second, and the
engine alone in one process at this machine's speed and at the reference speed: the issue's 5 MB/s
per core), and doc.keyword_stuffing's metric over
every raw document of the crawl, the clean sets and the other web files (how close clean text comes).
`--review N` also writes N random pages with the detector's hits to /tmp/rules-review.md (never into
the repository: it quotes ../shared text) for checking by eye.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import re
import tempfile
import time
import unicodedata
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from calibration import REFERENCE_MB_PER_S, calibrate  # bench/calibration.py (this script's folder is on sys.path)
from rich.console import Console

from cleaning.document import Doc
from cleaning.pipeline import load_pipeline
from cleaning.rules.metrics import DocView
from cleaning.rules.ruleset import DocRule, load_rules
from cleaning.runner import Runner, RunOptions
from cleaning.stages.rules import Rules, RulesConfig

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PAGES = SHARED / "web" / "cc-main-2023-50_ja_pages.jsonl.gz"
CLEAN = [SHARED / "clean" / "ku_wikipedia_leads.jsonl.gz", SHARED / "clean" / "livedoor_news.jsonl.gz"]
# other real web text, read only for doc.keyword_stuffing's metric (how high clean-ish pages go)
OTHER_WEB = [
    SHARED / "web" / name
    for name in ("kwdlc_web_leads.jsonl.gz", "fineweb2_edu_ja_100.jsonl.gz", "abeja_cc_ja_99.jsonl.gz")
]

# The detector is deliberately independent of rules/: different, simpler signals.
_HOME = r"(?:ホーム|HOME|Home|TOP|トップ|トップページ)"
BREADCRUMB = re.compile(rf"^{_HOME}\s*[>＞»›/|→]|^[>＞»›]$|^現在(?:位置|地)")
NAV_WORDS = {
    "会社概要", "お問い合わせ", "お問合せ", "サイトマップ", "プライバシーポリシー", "個人情報保護方針", "アクセス",
    "採用情報", "よくある質問", "利用規約", "ホーム", "トップページ", "HOME", "TOP", "メニュー", "MENU",
}  # fmt: skip
FOOTER = re.compile(r"(?i)copyright|all rights reserved|©")


def detect(text: str) -> dict[str, list[str]]:
    """Which kinds of boilerplate a page shows, with the lines that gave it away."""
    lines = [line.strip() for line in text.split("\n")]
    nav = [line for line in lines if line in NAV_WORDS]
    return {
        "breadcrumb": [line for line in lines if BREADCRUMB.search(line)][:3],
        "menu": nav[:5] if len(nav) >= 3 else [],
        "footer": [line for line in lines if FOOTER.search(line) and len(line) < 200][:2],
    }


def run(path: Path, out: Path) -> dict:
    """The default pipeline up to and including rules."""
    pipeline = load_pipeline(ROOT / "pipelines" / "ja.yaml")
    pipeline.stages = pipeline.stages[: [s.name for s in pipeline.stages].index("rules") + 1]
    opts = RunOptions([str(path)], out, use_ray=False, progress=False)
    return Runner(pipeline, opts, Console(file=io.StringIO())).run()


def engine_speed(run_dir: Path, repeats: int = 2) -> dict:
    """MB/s of the rules stage's `process` alone, in this process, over the run's normalized shards
    (best of `repeats` after a warm-up), with the calibration loop before and after: a shared VM's
    speed varies from day to day, so the figure is also given at the reference machine's speed."""
    docs = [
        Doc(r["id"], r["text"], {"url": r.get("url")})
        for f in sorted((run_dir / "01-normalize" / "shards").glob("*.parquet"))
        for r in pq.read_table(f, columns=["id", "text", "url"]).to_pylist()
    ]
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    stage = Rules(RulesConfig(), run_dir / "02-rules" / "_prepare" / "artifacts")
    batch = load_pipeline(ROOT / "pipelines" / "ja.yaml").batch_docs

    def once() -> float:
        started = time.perf_counter()
        for i in range(0, len(docs), batch):
            stage.process([Doc(d.id, d.text, dict(d.fields)) for d in docs[i : i + batch]])
        return time.perf_counter() - started

    calibration_before = calibrate()
    once()  # warm: memos, compiled patterns, the page cache of the line tables
    best = min(once() for _ in range(repeats))
    calibration = (calibration_before + calibrate()) / 2
    speed = mb / best
    return {
        "mb": round(mb, 1),
        "mb_per_s": round(speed, 2),
        "calibration_mb_per_s": round(calibration, 1),
        "mb_per_s_at_reference_speed": round(speed * REFERENCE_MB_PER_S / calibration, 2),
    }


def texts(folder: Path) -> dict[str, str]:
    return {
        r["id"]: r["text"]
        for f in sorted(folder.glob("*.parquet"))
        for r in pq.read_table(f, columns=["id", "text"]).to_pylist()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--review", type=int, default=0, help="write N random pages with detector hits for review")
    parser.add_argument(
        "--review-file",
        default="/tmp/rules-review.md",
        help="where the review goes: outside the repository, it quotes ../shared text that must not be committed",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    if not PAGES.exists():
        raise SystemExit(f"rules_eval: {PAGES} not found (../shared is needed)")
    report: dict = {"date": date.today().isoformat()}
    with tempfile.TemporaryDirectory() as tmp:
        summary = run(PAGES, Path(tmp) / "pages")
        before = texts(Path(tmp) / "pages" / "01-normalize" / "shards")
        after = texts(Path(tmp) / "pages" / "02-rules" / "shards")
        rules = summary["stages"][2]
        kinds = ("breadcrumb", "menu", "footer")
        hits_before = {k: sum(bool(detect(t)[k]) for t in before.values()) for k in kinds}
        hits_after = {k: sum(bool(detect(t)[k]) for t in after.values()) for k in kinds}
        report["pages"] = {
            "docs": summary["conservation"]["records_in"],
            "normalized": len(before),
            "kept": len(after),
            "with_boilerplate_before": {k: round(v / len(before), 4) for k, v in hits_before.items()},
            "with_boilerplate_after": {k: round(v / max(1, len(after)), 4) for k, v in hits_after.items()},
            "rejected_by_rule": rules["rejected"],
            "chars_in": rules["chars_in"],
            "chars_removed_by_rule": {
                k.removeprefix("chars_removed."): v
                for k, v in rules["counters"].items()
                if k.startswith("chars_removed.")
            },
            "chars_out": rules["chars_out"],
            "rules_mb_per_busy_s": round(rules["bytes_in"] / 1e6 / rules["seconds"], 2),
            "rules_engine_one_process": engine_speed(Path(tmp) / "pages"),
        }
        if args.review:
            write_review(before, after, args.review, Path(args.review_file))
        report["clean"] = {}
        for path in CLEAN:
            s = run(path, Path(tmp) / path.name)
            norm, rul = s["stages"][1], s["stages"][2]
            report["clean"][path.name] = {
                "docs": rul["docs_in"],
                "rejected_share": round(rul["rejected_total"] / rul["docs_in"], 4),
                "rejected_by_rule": rul["rejected"],
                "chars_removed_share": round(1 - rul["chars_out"] / norm["chars_out"], 4),
                "line_chars_removed_share": round(
                    sum(v for k, v in rul["counters"].items() if k.startswith("chars_removed.")) / norm["chars_out"], 4
                ),
            }
    stuffing = next(r for r in load_rules().doc_rules if r.id == "doc.keyword_stuffing")
    report["spaced_keyword_repeats"] = {p.name: keyword_repeats(p, stuffing) for p in [PAGES, *CLEAN, *OTHER_WEB]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rules-eval-{report['date']}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


def keyword_repeats(path: Path, rule: DocRule) -> dict:
    """doc.keyword_stuffing's metric over every raw document of a file (NFKC, as the normalize stage
    does): the largest values and how many documents reach the rule's threshold. Numbers only."""
    values = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            text = unicodedata.normalize("NFKC", json.loads(line).get("text") or "")
            values.append(int(DocView(text).value(rule.metric)))
    values.sort(reverse=True)
    return {"docs": len(values), "top": values[:10], "rejected": sum(v > rule.max for v in values)}


def write_review(before: dict[str, str], after: dict[str, str], n: int, path: Path) -> None:
    """N random pages: what the detector saw before, and whether the page survived with any left."""
    rng = random.Random(0)
    lines = ["# Detector review sample", ""]
    for doc_id in rng.sample(sorted(before), n):
        hits = detect(before[doc_id])
        left = detect(after[doc_id]) if doc_id in after else None
        lines.append(f"## {doc_id}")
        lines.append(f"- before: { {k: v for k, v in hits.items() if v} }")
        lines.append(f"- after: {'rejected' if left is None else {k: v for k, v in left.items() if v}}")
        page = before[doc_id].split("\n")
        lines.append("- first lines: " + " / ".join(page[:20])[:500])
        lines.append("- last lines: " + " / ".join(page[-6:])[:300])
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
