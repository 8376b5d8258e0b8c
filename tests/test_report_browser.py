"""The balance report in a real headless Chromium: it loads, sorts, filters, pages and opens clusters.

Skipped when Chromium or Playwright is missing, unless REQUIRE_BROWSER=1 (CI and `make report-check`).
Screenshots go to $REPORT_SCREENSHOTS when set.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from cleaning.report.html import render
from tests.browser import CHROMIUM, CHROMIUM_ARGS, unavailable

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    reason = unavailable()
    if reason:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()
    assert not errors, f"the page logged errors: {errors}"


def open_report(page, html: Path) -> None:
    page.goto(html.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)


def screenshot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("REPORT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    assert width >= 1000 and height >= 1000, (width, height)
    return path


def cluster_ids(page) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all("#cluster-body tr.row", "rows => rows.map(r => r.dataset.id)")]


def test_sample_report_sorts_filters_and_opens_a_cluster(page, sample_run: Path, tmp_path: Path) -> None:
    html = sample_run / "report" / "index.html"
    open_report(page, html)
    import json

    k = json.loads((sample_run / "report" / "report.json").read_text())["k"]
    assert len(cluster_ids(page)) == min(50, k)
    assert page.inner_text("#page-info").strip().endswith(f"{k} clusters")
    assert page.is_visible("#dedup") and "exact" in page.inner_text("#dedup-note")
    page.click("#cluster-head th[data-key='cluster']")
    descending = cluster_ids(page)
    page.click("#cluster-head th[data-key='cluster']")
    assert cluster_ids(page) == sorted(descending) == list(range(k))
    first_term = page.inner_text("#cluster-body tr.row:nth-child(4) .terms").split(" · ")[0]
    page.fill("#filter", first_term)
    filtered = cluster_ids(page)
    assert 3 in filtered and len(filtered) < k
    page.fill("#filter", "")
    page.click("#cluster-body tr.row[data-id='0']")
    assert page.is_visible("#detail")
    assert page.inner_text("#detail-title").startswith("Cluster 0 ")
    assert page.locator("#detail .snip").count() >= 1
    assert page.evaluate("location.hash") == "#cluster-0"
    screenshot(page, "sample-report.png", tmp_path)


def synthetic_rows(k: int) -> tuple[dict, list[dict], list[dict]]:
    words = ["旅行", "家電", "料理", "野球", "投資", "映画", "健康", "育児", "自動車", "ゲーム"]
    rows = []
    for c in range(k):
        docs = 1 + (k - c) % 997
        rows.append(
            {
                "cluster": c,
                "name": f"{words[c % 10]}・{words[(c * 7) % 10]}{c}",
                "domain": c % 100,
                "docs": docs,
                "final_docs": docs,
                "doc_share": docs / (500 * k),
                "chars": docs * 900,
                "char_share": docs / (500 * k),
                "est_tokens": docs * 400,
                "quality_mean": 0.2,
                "quality_median": 0.15,
                "noisy_share": 0.1,
                "ads_per_1k": (c % 7) * 0.4,
                "prose_share": 0.7,
                "mean_line_chars": 40.0,
                "no_token_docs": 0,
                "top_hosts": [[f"site{c % 313}.example.jp", docs // 2]],
                "top_host_share": 0.5,
                "terms": [words[c % 10], words[(c * 7) % 10] + str(c)],
                "removed_later": {},
                "dup_rate": 0.0,
                "snippets": [[f"doc-{c}-{i}", f"{words[c % 10]}についての記事です。" * 6] for i in range(3)],
                "weight": 1.0,
                "share_after": docs / (500 * k),
                "flags": ["ad-heavy"] if c % 7 == 6 else [],
            }
        )
    domains = [
        {
            "domain": d,
            "clusters": k // 100,
            "docs": 1,
            "char_share": 0.01,
            "share_after": 0.01,
            "terms": [words[d % 10]],
        }
        for d in range(100)
    ]
    overview = {
        "output": "synthetic",
        "generated": "now",
        "k": k,
        "domains": 100,
        "genre_model": "g-000000000000",
        "docs": 1,
        "docs_clustered": 1,
        "chars": 1,
        "est_tokens": 1,
        "tokens_measured": False,
        "chars_per_token": 2.2,
        "noise_threshold": 0.5,
        "stages": [],
        "flags": {"ad-heavy": 1},
        "flag_rules": {},
        "weights": {"path": None, "identity": True, "default": 1.0, "domains": {}, "clusters": {}},
        "quality_hist": {"kept": [1] * 100, "rejected": None},
    }
    return overview, rows, domains


def test_ten_thousand_clusters_stay_usable(page, tmp_path: Path) -> None:
    html = tmp_path / "big.html"
    html.write_text(render(*synthetic_rows(10_000)), encoding="utf-8")
    open_report(page, html)
    assert len(cluster_ids(page)) == 50, "one page of rows is drawn, not 10,000"
    assert "10,000 clusters" in page.inner_text("#page-info")
    page.click("#next")
    assert "page 2 /" in page.inner_text("#page-info")
    page.select_option("#flag-filter", "ad-heavy")
    assert "1,428 clusters" in page.inner_text("#page-info")
    page.fill("#filter", "野球")
    assert all(page.inner_text(f"#cluster-body tr.row[data-id='{i}']") for i in cluster_ids(page)[:3])
    page.goto(html.as_uri() + "#cluster-9999")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#detail-title").startswith("Cluster 9999 ")
    screenshot(page, "report-10000-clusters.png", tmp_path)


GLYPHS = """() => {
  const canvas = document.createElement("canvas"); canvas.width = canvas.height = 48;
  const ctx = canvas.getContext("2d");
  ctx.font = "32px " + getComputedStyle(document.querySelector("#cluster-body .terms")).fontFamily;
  const shape = (ch) => { ctx.clearRect(0, 0, 48, 48); ctx.fillText(ch, 4, 38);
    return ctx.getImageData(0, 0, 48, 48).data.filter((_, i) => i % 4 === 3).join(","); };
  return new Set(["日", "本", "語", "あ", "カ", "漢"].map(shape)).size;
}"""


def test_japanese_renders_as_glyphs_not_boxes(page, sample_run: Path, tmp_path: Path) -> None:
    """Without a CJK font every character is the same empty box: six characters must draw six shapes."""
    open_report(page, sample_run / "report" / "index.html")
    distinct = page.evaluate(GLYPHS)
    assert distinct == 6, f"Japanese renders as {distinct} distinct shape(s): install a CJK font (fonts-noto-cjk)"
    screenshot(page, "sample-report-glyphs.png", tmp_path)


def test_ticked_clusters_download_as_weights_for_this_model(page, sample_run: Path, tmp_path: Path) -> None:
    import json

    from cleaning.genres.weights import check_model, load_weights

    overview = json.loads((sample_run / "report" / "report.json").read_text())
    open_report(page, sample_run / "report" / "index.html")
    page.check("#cluster-body input.pick[data-id='0']")
    page.check("#cluster-body input.pick[data-id='2']")
    domain = int(page.get_attribute("#domain-body input.pick-domain >> nth=-1", "data-id"))
    page.check(f"#domain-body input.pick-domain[data-id='{domain}']")
    assert not page.is_visible("#detail"), "ticking a box does not open the cluster"
    page.fill("#pick-weight", "0.5")
    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "weights.yaml"
    download.value.save_as(path)
    weights = load_weights(path)
    assert weights.genre_model == overview["genre_model"] and weights.genre_model.startswith("g-")
    assert weights.clusters == {0: 0.5, 2: 0.5} and weights.domains == {domain: 0.5}
    check_model(weights, path, {overview["genre_model"]})
    import csv

    with (sample_run / "report" / "clusters.csv").open(encoding="utf-8") as f:
        name = next(r["name"] for r in csv.DictReader(f) if r["cluster"] == "0")
    assert name and f"  0: 0.5  # {name}\n" in path.read_text(encoding="utf-8"), "the cluster's name as a comment"
