"""Made-up crawl pages with line labels (tests/data/crawl_parts.yaml): a small labelled corpus for
`cleaning eval` and `cleaning rules train` tests, written for this project."""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

PARTS = yaml.safe_load((Path(__file__).parent / "data" / "crawl_parts.yaml").read_text(encoding="utf-8"))


PROSE = [a + b for a in PARTS["openings"] for b in PARTS["continuations"]]


def crawl_page(rng: random.Random, site: int, page: int, prose: list[str]) -> tuple[list[str], str, str]:
    """One page: lines, their labels (C/B/N) and the verdict by its prose characters, as the guidelines
    give it. No prose means a DROP navigation shell."""
    lines: list[tuple[str, str]] = [(f"山中工務店{site} | 施工事例{page}", "N")]
    lines += [(item, "B") for item in PARTS["nav"]]
    lines.append((rng.choice(PARTS["breadcrumbs"]), "B"))
    prose_lines = len(prose)
    lines += [(p, "C") for p in prose]
    if prose_lines:
        lines.append((rng.choice(PARTS["promo"]), "B"))
    lines.append((rng.choice(PARTS["related_header"]), "B"))
    lines += [(t, "B") for t in rng.sample(PARTS["related"], 4)]
    lines += [(f, "B") for f in PARTS["footer"]]
    chars = sum(len(p) for p in prose)  # the guidelines: under ~150 DROP, 150-250 BORDER
    verdict = "KEEP" if chars >= 250 else "BORDER" if chars >= 150 else "DROP"
    return [t for t, _ in lines], "".join(lab for _, lab in lines), verdict


def labelled_corpus(folder: Path, sites: int = 6, pages_per_site: int = 5, seed: int = 0) -> tuple[Path, Path]:
    """A JSONL corpus of crawl-like pages and their line labels as reference records (no text)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    docs, labels = [], []
    for site in range(sites):
        unused = rng.sample(PROSE, len(PROSE))  # a site never repeats a sentence of its own
        for page in range(pages_per_site):
            n = rng.choice([0, 1, 3, 4, 5])
            prose, unused = unused[:n], unused[n:]
            lines, labs, verdict = crawl_page(rng, site, page, prose)
            doc_id = f"s{site}p{page}"
            docs.append({"id": doc_id, "url": f"https://site{site}.example.jp/works/{page}", "text": "\n".join(lines)})
            labels.append({"id": doc_id, "labels": labs, "page": verdict, "annotator": "test"})
    corpus, label_file = folder / "crawl.jsonl", folder / "labels.jsonl"
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    label_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labels), encoding="utf-8")
    return corpus, label_file
