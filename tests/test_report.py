"""The balance report: per-cluster statistics, distinctive terms, tables and the HTML file."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cleaning.errors import CleaningError
from cleaning.evaluation.runread import open_run
from cleaning.report import summarize as sm
from cleaning.report.build import Flags, ReportOptions, build_report
from cleaning.report.html import render
from cleaning.report.words import distinctive_words, name_of
from tests.conftest import RULES_ONLY, SAMPLE, genre_model_id, genres_dir, run_pipeline


def local_map(fn, items, label):
    return [fn(i) for i in items]


def embedded_data(html: str) -> dict:
    match = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the report embeds its data"
    return json.loads(match.group(1))


def test_report_tables_add_up_to_the_run(sample_run: Path) -> None:
    report = sample_run / "report"
    overview = json.loads((report / "report.json").read_text())
    summary = json.loads((sample_run / "summary.json").read_text())
    genres = next(s for s in summary["stages"] if s["stage"] == "genres")
    table = pq.read_table(report / "clusters.parquet").to_pylist()
    assert len(table) == overview["k"] == len(np.load(genres_dir(sample_run) / "_prepare/artifacts/domain_of.npy"))
    dedup = next(s for s in summary["stages"] if s["stage"] == "dedup")
    assert sum(r["docs"] for r in table) == genres["kept"]
    assert overview["docs"] == genres["kept"] - dedup["rejected_total"], "the report's total is the final output"
    assert sum(r["chars"] for r in table) == genres["chars_out"]
    assert sum(r["doc_share"] for r in table) == pytest.approx(1)
    assert sum(r["share_after"] for r in table) == pytest.approx(1)
    with (report / "clusters.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["docs"]) for r in rows] == [r["docs"] for r in table]
    assert [s["stage"] for s in overview["stages"]] == [s["stage"] for s in summary["stages"]]
    assert overview["dedup"]["removed_exact"] == dedup["rejected"].get("dedup.exact", 0)
    assert sum(r["dup_rate"] * r["docs"] for r in table) == pytest.approx(dedup["rejected_total"])
    html = (report / "index.html").read_text(encoding="utf-8")
    data = embedded_data(html)
    assert len(data["clusters"]) == overview["k"]
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_every_cluster_is_described(sample_run: Path) -> None:
    data = embedded_data((sample_run / "report" / "index.html").read_text(encoding="utf-8"))
    for row in data["clusters"]:
        if row["docs"] == 0:
            continue
        assert row["snippets"] and len(row["snippets"]) <= min(5, row["docs"])
        assert row["terms"], row["cluster"]
        assert 0 <= row["quality_median"] <= 1 and 0 <= row["prose_share"] <= 1
        assert row["top_hosts"] and row["top_hosts"][0][1] <= row["docs"]
        assert row["flags"] == Flags().of(row)


def test_flags_follow_their_thresholds() -> None:
    row = {"ads_per_1k": 2.0, "prose_share": 0.1, "docs": 40, "top_host_share": 0.9, "noisy_share": 0.5}
    assert Flags().of(row) == ["ad-heavy", "list-like", "one-host", "noisy"]
    quiet = {"ads_per_1k": 0.1, "prose_share": 0.9, "docs": 3, "top_host_share": 1.0, "noisy_share": None}
    assert Flags().of(quiet) == ["tiny"], "one host of a 3-document cluster is not worth a flag"
    assert Flags(tiny_docs=2).of(quiet) == []


def test_snippets_are_the_documents_closest_to_the_centroid(sample_run: Path) -> None:
    table = pa.concat_tables(pq.read_table(p) for p in sorted((genres_dir(sample_run) / "shards").glob("*.parquet")))
    data = embedded_data((sample_run / "report" / "index.html").read_text(encoding="utf-8"))
    row = max(data["clusters"], key=lambda r: r["docs"])
    members = [
        (s, i)
        for i, c, s in zip(
            table["id"].to_pylist(), table["cluster"].to_pylist(), table["genre_sim"].to_pylist(), strict=True
        )
        if c == row["cluster"]
    ]
    expected = [i for _, i in sorted(members, key=lambda m: (-m[0], m[1]))[:5]]
    assert [doc_id for doc_id, _ in row["snippets"]] == expected


def test_shard_summaries_merge_to_the_same_as_one_shard(sample_run: Path, tmp_path: Path) -> None:
    """Per-shard partial results merge associatively: three shards = the same rows in one file."""
    paths = sorted((genres_dir(sample_run) / "shards").glob("*.parquet"))
    k = len(np.load(genres_dir(sample_run) / "_prepare/artifacts/domain_of.npy"))
    merged = sm.Summary(k)
    for part in local_map(sm.summarize_shard, [sm.ShardJob(p, k) for p in paths], ""):
        merged.merge(part)
    single = tmp_path / "all.parquet"
    pq.write_table(pa.concat_tables(pq.read_table(p) for p in paths), single)
    whole = sm.summarize_shard(sm.ShardJob(single, k))
    for name in ("docs", "chars", "prose_chars", "ad_hits", "q_hist"):
        assert np.array_equal(getattr(merged, name), getattr(whole, name)), name
    assert merged.snippets == whole.snippets and merged.sample == whole.sample and merged.hosts == whole.hosts


def test_distinctive_terms_are_whole_words_specific_to_their_cluster() -> None:
    common = "今日はとても良い天気でした。そして明日も晴れるでしょう。"
    texts = [
        (common + "新型スマートフォンのバッテリー容量とカメラ性能を比較します。") * 5,
        (common + "高校野球の決勝戦で投手が完封しました。監督のコメントです。") * 5,
        (common + "味噌汁の作り方：出汁を取り、豆腐とわかめを入れます。") * 5,
    ]
    terms = distinctive_words([[t] * 3 for t in texts])
    assert {"新型スマートフォン", "バッテリー容量", "カメラ性能"} <= set(terms[0]), terms[0]
    assert {"高校野球", "決勝戦", "投手"} <= set(terms[1]), terms[1]
    assert {"味噌汁", "豆腐"} <= set(terms[2]), terms[2]
    assert not any("天気" in t for row in terms for t in row), "words every cluster shares are not distinctive"
    fragments = {"マートフォ", "ッテリー", "噌汁の"}
    assert not fragments & {t for row in terms for t in row}, "no piece of a word"
    assert name_of(terms[1]).count("・") == 2
    assert distinctive_words([[""], []]) == [[], []]
    pet = ["今日もヒノッチと出かけた。ヒノッチは元気。ヒノッチ、ヒノッチ、ヒノッチ、ヒノッチ。"]
    travel = [f"{place}の温泉旅館に泊まりました。温泉が良かった。" for place in ("箱根", "別府", "草津")]
    other = [["高校野球の決勝戦で投手が完封しました。"] * 3, ["味噌汁の作り方を紹介します。"] * 3]
    named = distinctive_words([pet + travel, *other])[0]
    assert named[0] == "温泉" and "ヒノッチ" not in named, "a word of one document does not name the cluster"


def test_weights_preview_changes_the_mix(sample_run: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.yaml"
    weights.write_text(f"genre_model: {genre_model_id(sample_run)}\nclusters: {{0: 0, 1: 3}}\n")
    overview = build_report(ReportOptions(sample_run, tmp_path / "rep", weights), local_map, log=lambda s: None)
    rows = pq.read_table(tmp_path / "rep" / "clusters.parquet").to_pylist()
    assert rows[0]["share_after"] == 0 and rows[0]["weight"] == 0
    assert rows[1]["share_after"] > rows[1]["char_share"]
    assert sum(r["share_after"] for r in rows) == pytest.approx(1)
    assert overview["weights"]["clusters"] == {0: 0.0, 1: 3.0} and not overview["weights"]["identity"]
    assert "Clusters with a weight" in (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")


def test_report_counts_what_later_stages_removed(sample_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(sample_run, out)
    weights = tmp_path / "w.yaml"
    weights.write_text(f"genre_model: {genre_model_id(out)}\nclusters: {{2: 0}}\n")
    run_pipeline([SAMPLE], out, overrides=[f"balance.weights={weights}"])
    overview = build_report(ReportOptions(out), local_map, log=lambda s: None)
    rows = {r["cluster"]: r for r in pq.read_table(out / "report" / "clusters.parquet").to_pylist()}
    assert json.loads(rows[2]["removed_later"]) == {"balance.dropped": rows[2]["docs"]}, "one stage name, not two"
    assert json.loads(rows[3]["removed_later"]) == {}
    assert rows[2]["final_docs"] == 0 and all(r["final_docs"] <= r["docs"] for r in rows.values())
    final = pq.read_table(next(out.glob("*-tokenize")) / "shards", columns=["text"])
    assert overview["docs"] == final.num_rows, "the overview counts the final output"
    assert overview["chars"] == sum(map(len, final["text"].to_pylist()))
    assert overview["docs_clustered"] == sum(r["docs"] for r in rows.values()) > overview["docs"]
    assert overview["tokens_measured"] and overview["genre_model"] == genre_model_id(out)


def test_snippet_text_cannot_break_out_of_the_page() -> None:
    row = {
        "cluster": 0,
        "domain": 0,
        "docs": 1,
        "doc_share": 1.0,
        "chars": 10,
        "char_share": 1.0,
        "est_tokens": 5,
        "quality_mean": None,
        "quality_median": None,
        "noisy_share": None,
        "ads_per_1k": 0.0,
        "prose_share": 1.0,
        "mean_line_chars": 10.0,
        "no_token_docs": 0,
        "top_hosts": [],
        "top_host_share": 0.0,
        "terms": [],
        "snippets": [["x", "</script><script>alert(1)</script>"], ["y", "<!--<script> a comment opener"]],
        "removed_later": {},
        "dup_rate": 0.0,
        "weight": 1.0,
        "share_after": 1.0,
        "flags": [],
    }
    overview = {"quality_hist": {"kept": [0] * 100, "rejected": None}}
    html = render(overview, [row], [{"domain": 0, "char_share": 1.0, "share_after": 1.0, "terms": []}])
    assert html.count("</script>") == 2, "only the page's own two script blocks end"
    assert embedded_data(html)["clusters"][0]["snippets"][0][1] == "</script><script>alert(1)</script>"
    data_block = html.split('type="application/json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data_block, "'<!--<script>' inside a script block blanks the page"
    assert embedded_data(html)["clusters"][0]["snippets"][1][1] == "<!--<script> a comment opener"


def test_report_needs_a_finished_run_with_genres(tmp_path: Path) -> None:
    with pytest.raises(CleaningError, match="holds no cleaning run"):
        build_report(ReportOptions(tmp_path), local_map)
    run_pipeline([SAMPLE], tmp_path / "rules", RULES_ONLY)
    with pytest.raises(CleaningError, match="no genres stage"):
        build_report(ReportOptions(tmp_path / "rules"), local_map)


def test_an_unchanged_report_is_not_rebuilt_and_a_changed_input_rebuilds_it(sample_run: Path, tmp_path: Path) -> None:
    calls: list[str] = []

    def counting_map(fn, items, label):  # type: ignore[no-untyped-def]
        calls.append(label)
        return local_map(fn, items, label)

    weights = tmp_path / "w.yaml"
    weights.write_text(f"genre_model: {genre_model_id(sample_run)}\nclusters: {{0: 2}}\n")
    options = ReportOptions(sample_run, tmp_path / "rep", weights)
    first = build_report(options, counting_map, log=lambda s: None)
    assert calls and not first.get("up_to_date")
    calls.clear()
    again = build_report(options, counting_map, log=lambda s: None)
    assert again["up_to_date"] and not calls, "nothing was summarised again"
    assert again["files"] == first["files"] and again["k"] == first["k"]
    weights.write_text(f"genre_model: {genre_model_id(sample_run)}\nclusters: {{0: 3}}\n")
    changed = build_report(options, counting_map, log=lambda s: None)
    assert not changed.get("up_to_date") and changed["weights"]["clusters"] == {0: 3.0}
    assert not calls, "new weights reuse the cluster summary: nothing is read again"
    rows = pq.read_table(tmp_path / "rep" / "clusters.parquet").to_pylist()
    assert rows[0]["weight"] == 3.0 and all(r["weight"] == 1.0 for r in rows[1:])
    (tmp_path / "rep" / "clusters.csv").unlink()
    assert not build_report(options, counting_map, log=lambda s: None).get("up_to_date"), "a file was missing"
    (tmp_path / "rep" / ".summary.pkl").write_bytes(b"not a pickle")
    calls.clear()
    weights.write_text(f"genre_model: {genre_model_id(sample_run)}\nclusters: {{0: 4}}\n")
    assert build_report(options, counting_map, log=lambda s: None)["weights"]["clusters"] == {0: 4.0}
    assert "summarise clusters" in calls, "a broken cache is rebuilt, not trusted"


def test_report_of_a_run_that_deleted_its_intermediate_shards_is_the_same(sample_run: Path, tmp_path: Path) -> None:
    """The report reads the final shards plus what later stages removed, which together are the
    genres stage's output: deleting that output once consumed changes nothing in the report."""
    out = tmp_path / "out"
    shutil.copytree(sample_run, out)
    run_pipeline([SAMPLE], out, overrides=["work.intermediates=delete"])
    assert not list((genres_dir(out) / "shards").glob("*.parquet"))
    build_report(ReportOptions(out, dest=tmp_path / "rep"), local_map, log=lambda s: None)
    for name in ("clusters.csv", "domains.csv"):
        assert (tmp_path / "rep" / name).read_text() == (sample_run / "report" / name).read_text()
    with pytest.raises(CleaningError, match=r"work\.intermediates=keep"):
        open_run(out)


def test_chart_labels_are_clipped_by_display_width() -> None:
    from cleaning.report.charts import clip

    assert clip("domain 1: ab cd") == "domain 1: ab cd"
    wide = clip("domain 2: インフルエンザ 選手")
    assert wide.endswith("…") and wide.startswith("domain 2: インフルエンザ")
    assert clip("漢" * 13) == "漢" * 13 and clip("漢" * 14) == "漢" * 13 + "…"


def test_a_small_cluster_of_unrelated_documents_is_still_described() -> None:
    """Terms must be in two of a cluster's documents when it has two; two documents that share no
    term are described by their own terms rather than left unnamed."""
    from cleaning.report.words import distinctive_words

    unrelated = [
        "温泉旅館の露天風呂に入った。温泉旅館の朝食もおいしかった。",
        "将棋の名人戦を見た。将棋の解説が面白かった。",
    ]
    related = [
        "株価が上がった。株価の動きを見る。",
        "株価が下がった。株価の予想は難しい。",
        "株価と為替の関係。株価を調べる。",
    ]
    terms = distinctive_words([unrelated, related])
    assert terms[0] and all(any(t in d for d in unrelated) for t in terms[0])
    assert terms[1] and all(sum(t in d for d in related) >= 2 for t in terms[1]), "shared terms come first"
