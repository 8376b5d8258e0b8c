"""Per-shard partial statistics of the genre clusters, merged into one summary.

Each shard is read once in a worker (`summarize_shard`); the partial results are small (arrays
of length k plus a few examples per cluster) and merge associatively, so the report scales with
the number of clusters, not the corpus. Examples are chosen deterministically: snippets closest to
the centroid (ties by id), and a bottom-k sample by a hash of the id for the distinctive terms.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from cleaning.hosts import host_of
from cleaning.rules.metrics import LINE_END_CHARS
from cleaning.rules.ruleset import DEFAULT_RULES_DIR
from cleaning.rules.words import WordLists, read_word_list

Q_BINS = 100  # quality-score histogram bins per cluster (median to 0.01)
SNIPPETS = 5
SNIPPET_CHARS = 240
TERM_DOCS = 12  # documents per cluster sampled for distinctive terms
TERM_DOC_CHARS = 1500
TOP_HOSTS = 30  # hosts kept per cluster per shard (heavy hitters; exact for the top few)
_ADS: list[WordLists] = []
REJECT_COLUMNS = ("reject_stage", "reject_reason")
_COUNTS = ("docs", "chars", "final_docs", "final_chars", "prose_chars", "lines", "ad_hits", "no_tokens", "scored")


@dataclass
class Summary:
    """Statistics of k clusters; `merge` adds another shard's."""

    k: int
    docs: np.ndarray = field(init=False)  # documents the genres stage kept (some removed later)
    chars: np.ndarray = field(init=False)
    final_docs: np.ndarray = field(init=False)  # of those, documents in the run's final output
    final_chars: np.ndarray = field(init=False)
    prose_chars: np.ndarray = field(init=False)  # chars in lines ending like a sentence
    lines: np.ndarray = field(init=False)
    ad_hits: np.ndarray = field(init=False)
    no_tokens: np.ndarray = field(init=False)
    scored: np.ndarray = field(init=False)
    q_sum: np.ndarray = field(init=False)
    q_hist: np.ndarray = field(init=False)  # k × Q_BINS
    hosts: dict[int, Counter[str]] = field(default_factory=dict)
    snippets: dict[int, list[tuple[float, str, str]]] = field(default_factory=dict)  # (sim, id, text)
    sample: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # (hash, text)
    removed: Counter[tuple[int, str, str]] = field(default_factory=Counter)  # (cluster, stage, reason)

    def __post_init__(self) -> None:
        k = self.k
        for name in _COUNTS:
            setattr(self, name, np.zeros(k, np.int64))
        self.q_sum = np.zeros(k, np.float64)
        self.q_hist = np.zeros((k, Q_BINS), np.int64)

    def merge(self, other: Summary) -> Summary:
        for name in (*_COUNTS, "q_sum", "q_hist"):
            getattr(self, name).__iadd__(getattr(other, name))
        for c, hosts in other.hosts.items():
            self.hosts.setdefault(c, Counter()).update(hosts)
        for c, items in other.snippets.items():
            self.snippets[c] = _top_snippets([*self.snippets.get(c, []), *items])
        for c, items in other.sample.items():
            self.sample[c] = heapq.nsmallest(TERM_DOCS, [*self.sample.get(c, []), *items])
        self.removed.update(other.removed)
        return self


def _top_snippets(items: list[tuple[float, str, str]]) -> list[tuple[float, str, str]]:
    return sorted(items, key=lambda s: (-s[0], s[1]))[:SNIPPETS]


def _ad_lists() -> WordLists:
    if not _ADS:
        _ADS.append(WordLists({"ads": read_word_list(DEFAULT_RULES_DIR / "words" / "ad_keywords.txt")}))
    return _ADS[0]


@dataclass(frozen=True)
class ShardJob:
    path: Path
    k: int


COLUMNS = ("id", "text", "url", "cluster", "genre_sim", "genre_note", "quality_score", *REJECT_COLUMNS)


def summarize_shard(job: ShardJob) -> Summary:
    """Statistics of one shard of the documents the genres stage kept: a final shard, or a file
    of documents a later stage rejected (counted by stage and reason too). Together these are
    exactly the genres stage's output, which may have been deleted once consumed."""
    names = set(pq.read_schema(job.path).names)
    table = pq.read_table(job.path, columns=[c for c in COLUMNS if c in names])
    removed = "reject_stage" in names
    out = summarize_rejects(job, table) if removed else Summary(job.k)
    ads = _ad_lists()
    scores = table["quality_score"].to_pylist() if "quality_score" in names else [None] * table.num_rows
    notes = table["genre_note"].to_pylist()
    snippets: dict[int, list[tuple[float, str, str]]] = {}
    bottom: dict[int, list[tuple[int, str]]] = {}
    for doc_id, text, url, cluster, sim, score, note in zip(
        table["id"].to_pylist(),
        table["text"].to_pylist(),
        table["url"].to_pylist(),
        table["cluster"].to_pylist(),
        table["genre_sim"].to_pylist(),
        scores,
        notes,
        strict=True,
    ):
        c = cluster
        out.docs[c] += 1
        out.chars[c] += len(text)
        if not removed:
            out.final_docs[c] += 1
            out.final_chars[c] += len(text)
        lines = text.split("\n")
        out.lines[c] += len(lines)
        out.prose_chars[c] += sum(len(s) for s in (line.rstrip() for line in lines) if s.endswith(LINE_END_CHARS))
        out.ad_hits[c] += ads.match(text)["ads"].hits
        out.no_tokens[c] += note is not None
        if score is not None:
            out.scored[c] += 1
            out.q_sum[c] += score
            out.q_hist[c, min(Q_BINS - 1, int(score * Q_BINS))] += 1
        host = host_of(url)
        if host:
            out.hosts.setdefault(c, Counter())[host] += 1
        snippets.setdefault(c, []).append((float(sim), doc_id, text[:SNIPPET_CHARS]))
        heap = bottom.setdefault(c, [])  # max-heap of the TERM_DOCS smallest id hashes
        item = (-xxhash.xxh3_64_intdigest(doc_id.encode()), text[:TERM_DOC_CHARS])
        if len(heap) < TERM_DOCS:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    for c, items in snippets.items():
        out.snippets[c] = _top_snippets(items)
    for c, heap in bottom.items():
        out.sample[c] = sorted((-h, text) for h, text in heap)
    for c, hosts in out.hosts.items():
        out.hosts[c] = Counter(dict(hosts.most_common(TOP_HOSTS)))
    return out


def summarize_rejects(job: ShardJob, table: pa.Table) -> Summary:
    """Documents that stages after genres removed, per cluster and reason (dedup, balance)."""
    out = Summary(job.k)
    out.removed.update(
        zip(
            table["cluster"].to_pylist(),
            table["reject_stage"].to_pylist(),
            table["reject_reason"].to_pylist(),
            strict=True,
        )
    )
    return out
