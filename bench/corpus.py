"""Build (or reuse) the benchmark corpus: the real web pages of ../shared/data/web, grown to a size.

Copy 0 is every page as it is. Each further copy rewrites every page, seeded, so the result
is still real Japanese lines in real page layouts but mostly new documents:
- a quarter become near-duplicates of the page's previous copy (one character in 200 changed, an
  update line added to pages over 1,000 characters), as mirrors and re-crawls are; the dedup stage
  has to find them. A run of such copies is one group of near-duplicates, so group sizes follow a
  geometric law (mean 1.33, 1 in 64 of 4 or more) whatever the corpus size, as in a real crawl,
  where a page has a few copies rather than one more per gigabyte. Up to version 4 every near
  copy was of the original page, so groups grew with the corpus and dedup's candidate pairs with
  its square (bench/results/scale-*.md of 2026-11-30 and before);
- the rest keep about 40% of their own lines and take the others from random pages, which makes
  them distinct documents (character 5-gram Jaccard well below 0.5) with the same kind of text.
Pages are shuffled (seeded) and, for a small target, only as many are used as leave room for the
original and two rewrites. Ids and URLs get a copy suffix so every record is distinct. Files are
gzip JSONL of about 25 MB of text each, so ingest has several units of work. The folder is reused
while its `corpus.json` matches the requested size, seed and source files.

Usage: python bench/corpus.py [--mb 200] [--out bench/.cache/corpus-200mb]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT.parent / "shared" / "data" / "web"
VERSION = 5
FILE_MB = 25
NEAR_DUP_SHARE = 0.25
MIN_COPIES = 3  # the original and at least two rewrites of every page


def sources() -> list[Path]:
    return sorted(WEB.glob("*.jsonl.gz"))


def load_pages(paths: list[Path]) -> list[dict]:
    pages = []
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f):
                record = json.loads(line)
                text = record.get("text") or ""
                if text.strip():
                    pages.append(
                        {"id": str(record.get("id", f"{path.stem}:{n}")), "url": record.get("url"), "text": text}
                    )
    return pages


def new_host(url: str | None, copy: int) -> str | None:
    """The same path on a host of its own per copy (`c3.example.jp`): real crawls grow in hosts as
    they grow in pages, which the corpus-wide site statistics must be measured against."""
    if not url or "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://c{copy}.{rest}"


def rewrite(page: dict, copy: int, rng: random.Random, pool: list[str], previous: str) -> dict:
    """One page of copy `copy` (>= 1): a near-duplicate of `previous` (the page's text in the copy
    before) or a new page made of real lines of its own and of others."""
    lines = page["text"].split("\n")
    if rng.random() < NEAR_DUP_SHARE:  # a re-crawl: a few characters changed and an update line added
        chars = list(previous)
        for _ in range(max(1, len(chars) // 200)):
            chars[rng.randrange(len(chars))] = rng.choice("あいうえおかきくけこ0123456789")
        lines = "".join(chars).split("\n")
        if len(chars) > 1000:  # short pages keep J >= 0.8 only with the one-character change
            lines.append(f"最終更新: 2023年{rng.randint(1, 12)}月{rng.randint(1, 28)}日")
    else:
        lines = [line if rng.random() < 0.4 else rng.choice(pool) for line in lines]
    url = page["url"]
    return {
        "id": f"{page['id']}~{copy}",
        "url": f"{url}{'&' if '?' in url else '?'}copy={copy}" if url else None,
        "text": "\n".join(lines),
    }


def build(target_mb: float, out: Path, seed: int = 0, grow_hosts: bool = False) -> Path:
    """Write the corpus into `out` unless an identical one is there; returns `out`. With `grow_hosts`
    every copy after the first lives on hosts of its own (see `new_host`)."""
    paths = sources()
    if not paths:
        sys.exit(f"bench corpus: no *.jsonl.gz in {WEB} (is ../shared present?)")
    spec = {
        "version": VERSION,
        "mb": target_mb,
        "seed": seed,
        "sources": [[p.name, p.stat().st_size] for p in paths],
        **({"grow_hosts": True} if grow_hosts else {}),
    }
    marker = out / "corpus.json"
    if marker.is_file() and json.loads(marker.read_text()).get("spec") == spec:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jsonl.gz"):
        old.unlink()
    pages = load_pages(paths)
    random.Random(seed).shuffle(pages)  # any prefix mixes every source
    base = sum(len(p["text"].encode()) for p in pages)
    if base * MIN_COPIES > target_mb * 1e6:  # small corpora: fewer pages, still several copies each
        keep, size = [], 0.0
        for page in pages:
            if size * MIN_COPIES >= target_mb * 1e6:
                break
            keep.append(page)
            size += len(page["text"].encode())
        pages = keep
    pool = [line for p in pages for line in p["text"].split("\n") if line.strip()]
    target = target_mb * 1e6
    written = docs = copies = near = 0
    part, part_bytes, handle = 0, 0, None
    rng = random.Random(seed)
    copy = 0
    previous = [page["text"] for page in pages]
    while written < target:
        for i, page in enumerate(pages):
            record = page if copy == 0 else rewrite(page, copy, rng, pool, previous[i])
            previous[i] = record["text"]
            if grow_hosts and copy:
                record["url"] = new_host(record["url"], copy)
            size = len(record["text"].encode())
            if handle is None or part_bytes >= FILE_MB * 1e6:
                if handle:
                    handle.close()
                name = out / f"part-{part:03d}.jsonl.gz"
                handle = gzip.open(name, "wt", encoding="utf-8", compresslevel=1)  # noqa: SIM115 - closed below
                part, part_bytes = part + 1, 0
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            written, part_bytes, docs = written + size, part_bytes + size, docs + 1
            if written >= target:
                break
        copy += 1
        copies = copy
    if handle:
        handle.close()
    near = round(NEAR_DUP_SHARE * max(0, docs - len(pages)))
    info = {
        "spec": spec,
        "documents": docs,
        "text_mb": round(written / 1e6, 1),
        "copies": copies,
        "original_pages": len(pages),
        "near_duplicates_expected": near,
        "files": part,
    }
    marker.write_text(json.dumps(info, indent=2) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=200.0, help="MB of text (UTF-8)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.out or ROOT / "bench" / ".cache" / f"corpus-{args.mb:g}mb"
    build(args.mb, out, args.seed)
    print((out / "corpus.json").read_text())


if __name__ == "__main__":
    main()
