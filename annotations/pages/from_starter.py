"""Write starter_pages.jsonl: the starter set (../starter.jsonl, written for this project) as page records.

Each text becomes a page of one line per sentence. Good texts are whole-content pages (every line C,
KEEP): they teach the rules stage's models that a document which is all prose is kept, however short
(so each good text of several sentences also gives a page of its first sentence alone).
Noise texts are junk pages (DROP): ads and word lists have boilerplate lines (B), offensive and broken
texts neutral ones (N). Run from the repository root: python annotations/pages/from_starter.py
"""

import json
import re
from pathlib import Path

HERE = Path(__file__).parent
SENTENCE = re.compile(r"(?<=[。!?！？])(?=[^」』)）])")

records = []
for line in (HERE.parent / "starter.jsonl").read_text(encoding="utf-8").splitlines():
    item = json.loads(line)
    lines = [s.strip() for part in item["text"].split("\n") for s in SENTENCE.split(part) if s.strip()]
    good = item["label"] == "good"
    label = "C" if good else ("B" if item.get("category") in ("ad", "word_list") else "N")
    why = ("all prose: " if good else f"junk ({item.get('category')}): ") + (item.get("note") or "")
    versions = [lines, lines[:1]] if good and len(lines) > 1 else [lines]
    for version in versions:
        records.append(
            {
                "id": f"starter-{len(records):04d}",
                "text": "\n".join(version),
                "labels": label * len(version),
                "page": "KEEP" if good else "DROP",
                "annotator": "starter-set",
                "why": why if version is lines else "first sentence alone of " + why,
            }
        )
out = HERE / "starter_pages.jsonl"
out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
print(f"{len(records)} pages written to {out}")
