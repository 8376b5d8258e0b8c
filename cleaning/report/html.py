"""Render the report as one self-contained HTML file: data as embedded JSON, charts as inline SVG."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np

from cleaning.report import charts


def render(overview: dict[str, Any], rows: list[dict[str, Any]], domains: list[dict[str, Any]]) -> str:
    template = resources.files("cleaning.report").joinpath("template.html").read_text(encoding="utf-8")
    data = json.dumps(
        {"overview": overview, "clusters": rows, "domains": domains}, ensure_ascii=False, separators=(",", ":")
    )
    # No "<" at all inside the script block: "</script>" would end it and "<!--<script>" switch the HTML
    # parser into a state where the real "</script>" no longer ends it (the page goes blank).
    data = data.replace("<", "\\u003c")
    return (
        template.replace("__CHARTS__", _distribution_charts(overview, rows))
        .replace("__MIX__", _mix_chart(rows, domains))
        .replace("__DATA__", data)
    )


def _distribution_charts(overview: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    edges = np.array([0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 10**5, 10**6, 10**12])
    bucket = np.searchsorted(edges, np.array([r["docs"] for r in rows], dtype=np.int64), side="left")
    counts = np.bincount(bucket, minlength=len(edges))
    last = int(bucket.max()) if len(bucket) else 0
    labels = ["0"] + [f"≤{charts.short_number(hi)}" for hi in edges[1 : last + 1]]
    size_chart = charts.histogram({"clusters": counts[: last + 1].tolist()}, labels, "Cluster sizes (documents)")
    q = overview["quality_hist"]
    group = 5  # 100 bins shown as 20
    series = {"kept": _regroup(q["kept"], group)}
    if q.get("rejected"):
        series["rejected by quality"] = _regroup(q["rejected"], group)
    q_labels = [f"{i * group / 100:.2f}" for i in range(len(series["kept"]))]
    quality_chart = charts.histogram(series, q_labels, "P(noise) of documents (quality stage)")
    return size_chart + quality_chart


def _regroup(values: list[int], group: int) -> list[int]:
    return [sum(values[i : i + group]) for i in range(0, len(values), group)]


def _mix_chart(rows: list[dict[str, Any]], domains: list[dict[str, Any]]) -> str:
    by_domain = sorted(domains, key=lambda d: -max(d["char_share"], d["share_after"]))[:20]
    domain_rows = [
        (f"domain {d['domain']}: {' '.join(d['terms'][:2])}", d["char_share"], d["share_after"]) for d in by_domain
    ]
    changed = sorted((r for r in rows if r["weight"] != 1.0), key=lambda r: -abs(r["share_after"] - r["char_share"]))[
        :20
    ]
    cluster_rows = [(f"cluster {r['cluster']} ×{r['weight']:g}", r["char_share"], r["share_after"]) for r in changed]
    names = ("before", "after weights")
    out = charts.paired_bars(domain_rows, "Share of text per domain (top 20)", names)
    if cluster_rows:
        out += charts.paired_bars(cluster_rows, "Clusters with a weight (largest changes)", names)
    return out
