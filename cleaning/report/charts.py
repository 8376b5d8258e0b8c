"""Small SVG charts written into the report, so it opens with no network and no chart library."""

from __future__ import annotations

import unicodedata
from html import escape

COLORS = ["#3b6ea8", "#d08a2e", "#5a9e5a", "#b04a4a"]


def histogram(
    series: dict[str, list[float]], labels: list[str], title: str, width: int = 560, height: int = 200
) -> str:
    """Stacked vertical bars: one bar per label, one colour per series."""
    n = len(labels)
    if not n:
        return ""
    totals = [sum(values[i] for values in series.values()) for i in range(n)]
    top = max(totals) or 1
    left, bottom, plot_h = 48, 34, height - 58
    bar_w = (width - left - 8) / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="14" class="t">{escape(title)}</text>',
        f'<text x="{left - 4}" y="{height - bottom - plot_h + 4}" class="a" '
        f'text-anchor="end">{short_number(top)}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" class="a" text-anchor="end">0</text>',
    ]
    for i in range(n):
        y = height - bottom
        for s, values in enumerate(series.values()):
            h = plot_h * values[i] / top
            if h > 0:
                y -= h
                tip = f"{labels[i]}: {short_number(values[i])}"
                parts.append(
                    f'<rect x="{left + i * bar_w:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
                    f'height="{h:.1f}" fill="{COLORS[s % len(COLORS)]}"><title>{escape(tip)}</title></rect>'
                )
    step = max(1, n // 8)
    for i in range(0, n, step):
        x = left + i * bar_w + bar_w / 2
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 14}" class="a" text-anchor="middle">{escape(labels[i])}</text>'
        )
    legend_x = left
    for s, name in enumerate(series):
        parts.append(
            f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" fill="{COLORS[s % len(COLORS)]}"/>'
            f'<text x="{legend_x + 14}" y="{height - 3}" class="a">{escape(name)}</text>'
        )
        legend_x += 20 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def paired_bars(rows: list[tuple[str, float, float]], title: str, names: tuple[str, str], width: int = 560) -> str:
    """Horizontal before/after bars per label (shares 0..1)."""
    if not rows:
        return ""
    row_h, left = 18, 150
    height = 34 + row_h * len(rows) + 16
    top = max(max(a, b) for _, a, b in rows) or 1
    span = width - left - 110
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="14" class="t">{escape(title)}</text>',
    ]
    for i, (label, a, b) in enumerate(rows):
        y = 26 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 12}" class="a" text-anchor="end">{escape(clip(label))}</text>')
        for j, value in enumerate((a, b)):
            w = span * value / top
            parts.append(
                f'<rect x="{left}" y="{y + j * 8}" width="{w:.1f}" height="7" fill="{COLORS[j]}">'
                f"<title>{escape(label)} {names[j]}: {value:.2%}</title></rect>"
            )
        parts.append(
            f'<text x="{left + span * max(a, b) / top + 4:.1f}" y="{y + 12}" class="a">{a:.1%} → {b:.1%}</text>'
        )
    y = height - 10
    for j, name in enumerate(names):
        parts.append(
            f'<rect x="{left + j * 90}" y="{y - 8}" width="10" height="10" fill="{COLORS[j]}"/>'
            f'<text x="{left + j * 90 + 14}" y="{y + 1}" class="a">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def clip(label: str, units: int = 26) -> str:
    """At most `units` half-width cells (a kanji or kana takes two), so a label fits left of its bars."""
    used = 0
    for i, ch in enumerate(label):
        used += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used > units:
            return label[:i] + "…"
    return label


def short_number(x: float) -> str:
    x = float(x)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:g}" if x != int(x) else str(int(x))
