"""Corpus line statistics: distinct pages counted once whatever the shard layout, the compiled scan."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from cleaning.pipeline import load_pipeline
from cleaning.rules import charclass as cc
from cleaning.rules.linefeatures import DocLines
from cleaning.rules.linescan import COUNTS, codepoints, line_hashes, scan
from cleaning.rules.linestats import stats_for
from cleaning.runner import Runner, RunOptions
from tests.conftest import RULES_ONLY

FOOTER = "山中工務店は霞野市で創業五十年、地域の住まいを支えています。"
PROSE = [
    "霞野市の山中工務店では、地元の木材を使った家づくりを続けています。職人が一本ずつ木を選びます。",
    "今回の住まいは、広い土間と大きな窓のある平屋です。冬でも日差しが部屋の奥まで届きます。",
    "施主さまご家族は、庭で野菜を育てる暮らしを楽しみにされていました。勝手口の位置も話し合いました。",
    "外壁には塗り替えの手間が少ない焼き杉を選び、十年後、二十年後の姿も一緒に考えました。",
    "台所は家族が並んで料理できるように、作業台を広くとりました。子どもたちもよく手伝います。",
]


def site(i: int, text: str) -> dict:
    return {"id": f"p{i}", "url": f"https://koumuten.example.jp/works/{i}", "text": text}


def test_site_share_counts_distinct_pages() -> None:
    rows = [site(i, f"{PROSE[i]}\n{FOOTER}") for i in range(2)] + [site(9, f"{PROSE[0]}\n{FOOTER}")]
    stats = stats_for(rows)
    share, pages = stats.site_share("koumuten.example.jp", [FOOTER, PROSE[0], PROSE[1]])
    assert pages == 2, "the same page under two URLs is one page"
    assert share.tolist() == [1.0, 0.0, 0.0], "PROSE[0] is on one distinct page (twice crawled): not repeated"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def rules_output(inputs: list[Path], out: Path) -> dict[str, str]:
    opts = RunOptions([str(p) for p in inputs], out, use_ray=False, progress=False)
    Runner(load_pipeline(RULES_ONLY), opts, Console(file=io.StringIO())).run()
    shards = (out / "02-rules" / "shards").glob("*.parquet")
    return {r["id"]: r["text"] for f in shards for r in pq.read_table(f).to_pylist()}


def test_the_same_pages_split_two_ways_give_the_same_output(tmp_path: Path) -> None:
    """Copies of one page in different files count once, so no page loses its own text as 'repeated'."""
    body = "\n".join(PROSE)
    # counted per shard, the three copies would be 3 of the site's 5 pages: every line of it "repeated"
    pages = [site(i, f"{PROSE[i]}\n{FOOTER}") for i in range(2)]
    copies = [dict(site(7, body), id=f"copy{k}") for k in range(3)]  # one page crawled three times
    one = rules_output([write_jsonl(tmp_path / "one" / "all.jsonl", pages + copies)], tmp_path / "out1")
    split = [
        write_jsonl(tmp_path / "split" / "a.jsonl", [pages[0], copies[0]]),
        write_jsonl(tmp_path / "split" / "b.jsonl", [pages[1], copies[1]]),
        write_jsonl(tmp_path / "split" / "c.jsonl", [copies[2]]),
    ]
    two = rules_output(split, tmp_path / "out2")
    assert one == two
    assert all(one.get(f"copy{k}") == body for k in range(3)), "a page crawled three times keeps all its lines"


def test_scan_counts_classes_and_hashes_lines() -> None:
    lines = ["東京都の会社です。", "カタカナ123abc", "", "東京都の会社です。"]
    counts, hashes, _templates, has_template = scan(*codepoints(lines)[:3])
    col = {name: i for i, name in enumerate(COUNTS)}
    assert counts[0, col["kanji"]] == 5 and counts[0, col["hira"]] == 3 and counts[0, col["period"]] == 1
    assert counts[0, col["particles"]] == 2, "都 then の, 社 then で"
    assert counts[1, col["kata"]] == 4 and counts[1, col["digit"]] == 3 and counts[1, col["alpha"]] == 3
    assert counts[2].sum() == 0
    assert hashes[0] == hashes[3] != hashes[1] and line_hashes(lines[:1])[0] == hashes[0]
    assert not has_template.any(), "short lines have no template"


def test_templates_ignore_swapped_names() -> None:
    a = "大阪市で債務整理をお考えの方は、まずはお気軽に当事務所の無料相談をご利用ください。"
    b = "名古屋市で債務整理をお考えの方は、まずはお気軽に当事務所の無料相談をご利用ください。"
    c = "大阪市で相続の手続きにお困りの方は、まずは当事務所の司法書士にご相談ください。"
    _, hashes, templates, has_template = scan(*codepoints([a, b, c])[:3])
    assert has_template.all() and hashes[0] != hashes[1]
    assert templates[0] == templates[1] != templates[2]


def test_template_share_finds_one_text_with_place_names_swapped() -> None:
    cities = ["大阪市", "名古屋市", "福岡市", "札幌市"]
    template = "{}で債務整理をお考えの方は、まずはお気軽に当事務所の無料相談をご利用ください。"
    rows = [site(i, f"{template.format(c)}\n{PROSE[i]}") for i, c in enumerate(cities)]
    stats = stats_for(rows)
    lines = [template.format("仙台市"), PROSE[0]]
    out = stats.lookup([DocLines(lines, "koumuten.example.jp", [0, 0])], *scan(*codepoints(lines)[:3])[1:])
    assert out["template_share"].tolist() == [1.0, 0.0]
    assert out["site_share"].tolist() == [0.0, 0.0], "the exact line is on no page of the site"


def test_class_table_matches_the_metrics_definitions() -> None:
    from cleaning.rules.metrics import hiragana_mask, kanji_mask, katakana_mask, symbol_mask

    cp = np.arange(0x30000, dtype=np.uint32)
    table = cc.TABLE[cp]
    assert np.array_equal((table & cc.HIRA) != 0, hiragana_mask(cp))
    assert np.array_equal((table & cc.KATA) != 0, katakana_mask(cp))
    assert np.array_equal((table & cc.KANJI) != 0, kanji_mask(cp))
    assert np.array_equal((table & cc.SYMBOL) != 0, symbol_mask(cp))


def test_partitions_follow_the_spill_size_and_do_not_change_any_count(tmp_path: Path) -> None:
    """Partitions are ranges of spill buckets cut at ~partition_mb (they were a constant 16, each
    holding 1/16 of the corpus); the tables are joined into one file per kind however many."""
    from cleaning.rules.linestats import BUCKETS, CorpusLineStats, count_lines

    hosts = [f"site{h}.example.jp" for h in range(40)]
    rows = [
        {"text": f"{PROSE[i % 5]}\n{FOOTER}\n{hosts[h]}のお知らせ{i}件目です。", "url": f"https://{hosts[h]}/p/{i}"}
        for h in range(40)
        for i in range(6)
    ]
    shard = tmp_path / "docs.parquet"
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows), shard)
    lines = [FOOTER, PROSE[0], PROSE[3], "どこにもない行です。"]
    docs = [DocLines(lines, host, [0] * len(lines)) for host in hosts[:5]]
    scanned = scan(*codepoints([line for d in docs for line in d.lines])[:3])[1:]
    results = {}
    for name, kwargs in (("one", {"partitions": 1}), ("auto", {"partition_mb": 0.001}), ("fixed", {"partitions": 7})):
        out = tmp_path / name
        out.mkdir()
        count_lines([shard], out, **kwargs)
        meta = json.loads((out / "linestats.json").read_text())
        files = sorted(p.name for p in out.iterdir())
        results[name] = (len(meta["bounds"]) - 1, files, CorpusLineStats(out).lookup(docs, *scanned))
    assert results["one"][0] == 1 and results["fixed"][0] == 7
    assert 10 < results["auto"][0] <= BUCKETS, "a thousand rows a partition: the spill decides how many"
    assert results["one"][1] == results["auto"][1] == results["fixed"][1], "the same files, whatever the count"
    for key, value in results["one"][2].items():
        assert np.array_equal(value, results["auto"][2][key]) and np.array_equal(value, results["fixed"][2][key])
    # FOOTER on all 6 pages of a site, PROSE[0] on 2, PROSE[3] on 1 (a line on one page is not counted)
    assert results["one"][2]["site_share"].tolist()[:4] == [1.0, pytest.approx(2 / 6), 0.0, 0.0]
    # every site has FOOTER and PROSE[0] (each found in its own partition's table); the last line none
    host_share = results["fixed"][2]["host_share"].reshape(5, 4)
    assert (host_share[:, :2] > 0).all() and (host_share[:, 3] == 0).all()


def test_tables_of_an_older_layout_are_one_clear_error(tmp_path: Path) -> None:
    from cleaning.errors import CleaningError
    from cleaning.rules.linestats import CorpusLineStats

    (tmp_path / "linestats.json").write_text(json.dumps({"partitions": 16, "sites": 3}))
    with pytest.raises(CleaningError, match="older version; rerun"):
        CorpusLineStats(tmp_path)
