"""Annotations checks, training with CV and model card, calibrated P(noise), the stage, pages, sampling."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from rich.console import Console

from cleaning.errors import CleaningError
from cleaning.pipeline import load_pipeline
from cleaning.quality import model as qm
from cleaning.quality.annotations import check_annotations, training_set
from cleaning.quality.pages import TrainDoc, labelled_pages, page_documents
from cleaning.quality.sample import read_corpus, sample
from cleaning.quality.train import calibration, train_and_describe
from cleaning.runner import Runner, RunOptions
from tests.conftest import ROOT, output_ids
from tests.helpers import write_pipeline
from tests.test_runner import input_ids

GOOD = [
    "今日は朝から雨が降っていたので、家で本を読んで過ごした。",
    "駅前の図書館が改装を終え、来週から再び利用できるようになる。",
    "週末は家族で公園へ出かけ、芝生の上でお弁当を食べた。",
    "この料理は、玉ねぎをじっくり炒めることで甘みが出て美味しくなります。",
    "市では来月から、ごみの分別方法を一部変更する予定です。",
    "新しい職場にも少しずつ慣れてきて、毎日が楽しくなってきた。",
]
NOISE = [
    "【送料無料】ポイント10倍 今すぐ購入 カートに入れる ¥3,980(税込)",
    "激安 格安 最安値 通販 送料無料 クーポン 限定セール 在庫あり",
    "脱毛 格安 口コミ 安い 新宿 渋谷 池袋 ランキング おすすめ",
    "今だけ半額!今すぐクリック!限定クーポン配布中!お急ぎください!",
    "ホワイト ブラック グレー ネイビー ベージュ 選択してください",
    "人気 ランキング 1位 2位 3位 比較 最新 2023 おすすめ 激安",
]


def annotations(n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        for text in GOOD:
            rows.append({"text": f"{text}{'とても' * i}よかった。", "label": "good", "annotator": "a"})
        for j, text in enumerate(NOISE):
            rows.append({"text": f"{text} {i}{j}", "label": "noise", "annotator": "b", "category": "ad"})
    return rows


def write_jsonl(path: Path, rows: list[dict], extra_lines: list[str] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    data, report = training_set([write_jsonl(folder / "ann.jsonl", annotations())], skip_invalid=False)
    train_and_describe(data, report, folder / "quality.bin", folds=3)
    return folder / "quality.bin"


def test_check_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    rows = [*annotations(2), {"text": GOOD[0] + "とてもよかった。", "label": "noise", "annotator": "c"}]
    bad = [
        '{"text": "x", "label": "maybe", "annotator": "a"}',
        '{"text": "  ", "label": "good", "annotator": "a"}',
        "not json",
        '{"text": "y", "label": "good", "annotator": "a", "colour": "red"}',
    ]
    path = write_jsonl(tmp_path / "a.jsonl", rows, bad)
    report = check_annotations([tmp_path])
    n = len(rows)
    text = "\n".join(report.errors)
    assert f"a.jsonl:{n + 1}: label must be one of" in text
    assert f"a.jsonl:{n + 2}: empty or missing text" in text
    assert f"a.jsonl:{n + 3}: not valid UTF-8 JSON" in text
    assert f"a.jsonl:{n + 4}: unknown fields ['colour']" in text
    conflict = next(e for e in report.errors if e.startswith("same text with conflicting labels"))
    assert "(good, a)" in conflict and "(noise, c)" in conflict and str(path) in conflict
    with pytest.raises(CleaningError, match=r"a\.jsonl:\d+: .*and 3 more invalid lines.*quality\.skip_invalid=true"):
        training_set([tmp_path], skip_invalid=False)
    data, _ = training_set([tmp_path], skip_invalid=True)
    assert GOOD[0] + "とてもよかった。" not in {a.text for a in data}, "conflicting texts are not trained on"


def test_check_warns_on_duplicates_and_imbalance(tmp_path: Path) -> None:
    rows = [{"text": t, "label": "good", "annotator": "a"} for t in GOOD] * 2 + [
        {"text": NOISE[0], "label": "noise", "annotator": "a"}
    ]
    report = check_annotations([write_jsonl(tmp_path / "d.jsonl", rows)])
    assert any(w.startswith("exact duplicate") for w in report.warnings)
    assert any("unbalanced" in w for w in report.warnings)
    assert not report.errors


def test_annotations_check_cli_exit_codes(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "ok" / "a.jsonl", annotations(1))
    ok = subprocess.run(
        [sys.executable, "-m", "cleaning", "annotations", "check", str(good)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "0 errors" in ok.stdout
    bad = write_jsonl(tmp_path / "bad" / "b.jsonl", annotations(1), ['{"text": "x"}'])
    res = subprocess.run(
        [sys.executable, "-m", "cleaning", "annotations", "check", str(bad)], capture_output=True, text=True
    )
    assert res.returncode == 1 and f"b.jsonl:{len(annotations(1)) + 1}: label must be one of" in res.stdout


def test_model_card_has_what_a_reviewer_needs(trained: Path) -> None:
    card = json.loads(trained.with_suffix(".card.json").read_text())
    assert card["data"]["per_class"] == {"good": 48, "noise": 48}
    assert card["data"]["files"][0]["sha256"]
    at = card["cv"]["at_threshold"]
    assert set(at) >= {"accuracy", "good", "noise", "confusion"}
    assert card["threshold"] >= 0.5
    assert card["cv"]["at_0.5"]["accuracy"] > 0.8, "an easy synthetic task must be learnt"
    bins = card["calibration"]["bins"]
    assert sum(b["documents"] for b in bins) == 96 and 0 <= card["calibration"]["brier"] < 0.25
    names = [f["name"] for f in card["combiner"]["features"]]
    assert names[:2] == ["fasttext_mean", "fasttext_max"] and "sentence_end_ratio" in names
    md = trained.with_suffix(".card.md").read_text()
    assert md.startswith("# Quality model card") and "Calibration (out-of-fold): Brier" in md


def test_retraining_gives_the_same_bytes_and_unchanged_training_data_reuses_the_model(
    tmp_path: Path, trained: Path
) -> None:
    data, report = training_set([write_jsonl(tmp_path / "ann.jsonl", annotations())], skip_invalid=False)
    again = tmp_path / "again" / "quality.bin"
    train_and_describe(data, report, again, folds=3)
    docs = GOOD + NOISE + ["よくわからない文章です"]
    a, b = qm.QualityModel.load(trained).score(docs), qm.QualityModel.load(again).score(docs)
    assert again.read_bytes() == trained.read_bytes(), "trained in a fresh process, fastText is reproducible"
    assert np.array_equal(a, b)
    # In a run, new input that leaves the training data alone keeps the model: same bytes, same fingerprint.
    ann = write_jsonl(tmp_path / "ann" / "a.jsonl", annotations(3))
    stage = {"stage": "quality", "annotations": [str(ann.parent)], "pages": [], "folds": 3}
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "normalize"}, stage])
    corpus = write_jsonl(tmp_path / "in" / "docs.jsonl", [{"id": "d", "text": GOOD[2]}])
    artifacts = tmp_path / "out" / "02-quality" / "_prepare" / "artifacts"
    bins = []
    for extra in ([], [{"id": "e", "text": GOOD[3]}]):
        write_jsonl(corpus, [{"id": "d", "text": GOOD[2]}, *extra])
        opts = RunOptions([str(corpus)], tmp_path / "out", use_ray=False, progress=False)
        Runner(load_pipeline(pipeline), opts, Console(file=io.StringIO())).run()
        bins.append(((artifacts / "quality.bin").read_bytes(), (artifacts / "quality.card.json").read_bytes()))
    assert bins[0] == bins[1]
    assert "seconds" not in bins[0][1].decode(), "timings would change the fingerprint on every retrain"


def test_combiner_round_trips_through_the_card() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=200)) > 0
    combiner = qm.fit_combiner(x, y, ("a", "b", "c"))
    again = qm.Combiner.from_json(json.loads(json.dumps(combiner.to_json())))
    assert np.allclose(combiner.predict(x), again.predict(x))
    assert combiner.coef[0] > 1 and abs(combiner.coef[1]) < 0.5, "it weighs the informative feature"


def test_calibration_compares_predicted_and_observed_noise_per_bin() -> None:
    scores = np.array([0.05] * 40 + [0.95] * 40)
    is_noise = np.array([False] * 38 + [True] * 2 + [True] * 30 + [False] * 10)
    cal = calibration(scores, is_noise)
    assert [b["documents"] for b in cal["bins"]] == [40, 40]
    assert cal["bins"][0]["noise_share"] == 0.05 and cal["bins"][1]["noise_share"] == 0.75
    assert cal["max_gap"] == pytest.approx(0.2)
    assert cal["brier"] == pytest.approx(float(((scores - is_noise) ** 2).mean()), abs=1e-4)


class _FakeModel:
    """predict() returns labels ordered by probability, as fastText does."""

    def predict(self, lines: list[str], k: int = 2):
        return [("__label__good", "__label__noise")] * len(lines), [np.array([0.7, 0.3])] * len(lines)


def test_p_noise_is_read_from_the_noise_label_not_the_top_label() -> None:
    assert qm.p_noise(_FakeModel(), ["a b", "c d"]).tolist() == [0.3, 0.3]


def test_long_documents_are_scored_as_a_length_weighted_mean_of_chunks(trained: Path) -> None:
    model = qm.load(trained)
    [top] = qm.chunk_scores(model, [GOOD[1] * 10 + "\n" + NOISE[0] + " " + NOISE[1]], "chars", 300)[1]
    prose, ad = GOOD[1] * 10, NOISE[0] + " " + NOISE[1]
    [p_prose, p_ad] = qm.score_documents(model, [prose, ad], "chars", 300)
    [mixed] = qm.score_documents(model, [prose + "\n" + ad], "chars", 300)
    chunks = qm.chunks(prose + "\n" + ad, 300)
    assert len(chunks) == 2
    weights = np.array([len(c) for c in chunks], dtype=float)
    assert mixed == pytest.approx(float((weights * [p_prose, p_ad]).sum() / weights.sum()), abs=0.05)
    assert p_prose < 0.5 < p_ad
    assert top == pytest.approx(max(p_prose, p_ad), abs=0.05), "the worst chunk is a feature of its own"


def test_stage_adds_scores_and_conserves_documents(tmp_path: Path, trained: Path) -> None:
    docs = [{"id": f"g{i}", "text": t} for i, t in enumerate(GOOD)] + [
        {"id": f"n{i}", "text": t} for i, t in enumerate(NOISE)
    ]
    corpus = write_jsonl(tmp_path / "in" / "docs.jsonl", docs)
    pipeline = write_pipeline(
        tmp_path / "p.yaml", [{"stage": "normalize"}, {"stage": "quality", "model": str(trained)}]
    )
    opts = RunOptions([str(corpus)], tmp_path / "out", use_ray=False, progress=False)
    summary = Runner(load_pipeline(pipeline), opts, Console(file=io.StringIO())).run()
    kept, rejected = output_ids(tmp_path / "out")
    assert kept + rejected == input_ids([corpus])
    assert summary["stages"][2]["rejected"].get("quality.noise", 0) >= len(NOISE) - 1
    rows = [r for f in (tmp_path / "out").rglob("02-quality/shards/*.parquet") for r in pq.read_table(f).to_pylist()]
    rows += [r for f in (tmp_path / "out" / "rejects" / "quality").glob("*") for r in pq.read_table(f).to_pylist()]
    assert all(0.0 <= r["quality_score"] <= 1.0 for r in rows) and len(rows) == len(docs)
    rejected_rows = [r for r in rows if r.get("reject_reason") == "quality.noise"]
    assert all("P(noise)=" in r["reject_detail"] for r in rejected_rows)


def test_stage_trains_from_annotations_when_no_model_is_given(tmp_path: Path) -> None:
    ann = write_jsonl(tmp_path / "ann" / "a.jsonl", annotations(4))
    corpus = write_jsonl(tmp_path / "in" / "docs.jsonl", [{"id": "d", "text": GOOD[2]}])
    stage = {"stage": "quality", "annotations": [str(ann.parent)], "folds": 3}
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "normalize"}, stage])
    opts = RunOptions([str(corpus)], tmp_path / "out", use_ray=False, progress=False)
    Runner(load_pipeline(pipeline), opts, Console(file=io.StringIO())).run()
    artifacts = tmp_path / "out" / "02-quality" / "_prepare" / "artifacts"
    assert (artifacts / "quality.bin").is_file() and (artifacts / "quality.card.json").is_file()


def test_uncertain_sampling_ranks_around_the_threshold_and_gives_excerpts(tmp_path: Path, trained: Path) -> None:
    long_doc = "\n".join([GOOD[1] * 4, NOISE[0] * 4, GOOD[4] * 4])
    rows = [{"id": str(i), "text": t, "url": f"https://x.jp/{i}"} for i, t in enumerate([*GOOD, *NOISE, long_doc])]
    docs = read_corpus([write_jsonl(tmp_path / "c.jsonl", rows)])
    model = qm.QualityModel.load(trained)
    scores = model.score([d.text for d in docs])
    for threshold in (0.5, 0.9):
        picked = sample(docs, 5, "uncertain", model, threshold)
        want = sorted(np.argsort(np.abs(scores - threshold), kind="stable")[:5])
        assert sorted(int(p["source"]) for p in picked) == [int(docs[i].id) for i in want]
        assert all(f"threshold {threshold:.3f}" in p["note"] for p in picked)
    picked = sample(docs, len(docs), "random", model, seed=1)
    excerpt = next(p for p in picked if p["source"] == str(len(docs) - 1))
    assert len(excerpt["text"]) <= 300 < len(long_doc) and excerpt["text"] in long_doc
    assert excerpt["url"] == f"https://x.jp/{len(docs) - 1}" and "excerpt" in excerpt["note"]
    assert all(p["label"] is None for p in picked)
    assert sample(docs, 4, "random", None, seed=3) == sample(docs, 4, "random", None, seed=3)
    with pytest.raises(CleaningError, match="needs a `cluster` column"):
        sample(docs, 3, "per-cluster", model)


def test_labelled_pages_join_training_as_the_run_left_them(tmp_path: Path) -> None:
    import pyarrow as pa

    shard = tmp_path / "shards" / "s.parquet"
    shard.parent.mkdir()
    table = {
        "id": ["p1", "p2", "p3"],
        "text": [GOOD[0], NOISE[0], GOOD[1]],
        "url": ["https://a.jp/1", "https://b.jp/2", None],
    }
    pq.write_table(pa.table(table), shard)
    pages = write_jsonl(tmp_path / "pages" / "p.jsonl", [
        {"id": "p1", "page": "KEEP", "labels": "C"},
        {"id": "p2", "page": "DROP", "labels": "BBB"},  # line counts are checked against raw pages, not here
        {"id": "p3", "page": "BORDER", "labels": "C"},
        {"id": "elsewhere", "page": "KEEP", "labels": "C"},
    ])  # fmt: skip
    docs, counts = page_documents(labelled_pages([pages]), [shard], min_chars=1)
    assert docs == [
        TrainDoc(GOOD[0], "good", "site:a.jp", "page", f"{pages}:1"),
        TrainDoc(NOISE[0], "noise", "site:b.jp", "page", f"{pages}:2"),
    ]
    assert counts == {"used": 2, "too_short": 0, "not_in_run": 1}, "BORDER pages left out, other corpora counted"
    _, counts = page_documents(labelled_pages([pages]), [shard])
    assert counts == {"used": 0, "too_short": 2, "not_in_run": 1}, "how much prose is left is the rules' call"


def test_stage_trains_on_labelled_pages_of_its_corpus(tmp_path: Path) -> None:
    ann = write_jsonl(tmp_path / "ann" / "a.jsonl", annotations(3))
    texts = [(f"g{i}", GOOD[i % 6] * 4, "KEEP") for i in range(8)] + [(f"n{i}", NOISE[i % 6], "DROP") for i in range(8)]
    corpus = write_jsonl(tmp_path / "in" / "docs.jsonl", [{"id": i, "text": t} for i, t, _ in texts])
    labels = [{"id": i, "page": v, "labels": "C" if v == "KEEP" else "B"} for i, _, v in texts]
    pages = write_jsonl(tmp_path / "pages" / "p.jsonl", labels)
    stage = {
        "stage": "quality",
        "annotations": [str(ann.parent)],
        "pages": [str(pages)],
        "folds": 3,
        "page_min_chars": 1,
    }
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "normalize"}, stage])
    opts = RunOptions([str(corpus)], tmp_path / "out", use_ray=False, progress=False)
    Runner(load_pipeline(pipeline), opts, Console(file=io.StringIO())).run()
    card = json.loads((tmp_path / "out" / "02-quality" / "_prepare" / "artifacts" / "quality.card.json").read_text())
    assert card["data"]["pages"] == {"used": 16, "too_short": 0, "not_in_run": 0}
    assert card["cv"]["pages"]["documents"] == 16 and card["cv"]["chunks"]["documents"] == 36


def test_quality_train_cli(tmp_path: Path) -> None:
    ann = write_jsonl(tmp_path / "a.jsonl", annotations(3), ['{"text": "x", "label": "bad"}'])
    cmd = [
        sys.executable,
        "-m",
        "cleaning",
        "quality",
        "train",
        "-a",
        str(ann),
        "--out",
        str(tmp_path / "m.bin"),
        "--folds",
        "3",
    ]
    refused = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert refused.returncode == 2 and "--skip-invalid" in refused.stderr
    assert f"a.jsonl:{len(annotations(3)) + 1}:" in refused.stderr and len(refused.stderr.strip().splitlines()) <= 3
    done = subprocess.run([*cmd, "--skip-invalid"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"quality.model={tmp_path / 'm.bin'}" in done.stdout and (tmp_path / "m.card.md").is_file()


def test_a_bad_annotation_line_stops_a_run_with_one_line_and_the_real_switch(tmp_path: Path) -> None:
    ann = write_jsonl(tmp_path / "ann" / "a.jsonl", annotations(2), ["not json"])
    corpus = write_jsonl(tmp_path / "in" / "docs.jsonl", [{"id": "d", "text": GOOD[2]}])
    stage = {"stage": "quality", "annotations": [str(ann.parent)], "pages": [], "folds": 3}
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "normalize"}, stage])
    base = [sys.executable, "-m", "cleaning", "run", str(pipeline), "--input", str(corpus), "--no-ray"]
    res = subprocess.run([*base, "--output", str(tmp_path / "o1")], capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"a.jsonl:{len(annotations(2)) + 1}: not valid UTF-8 JSON" in res.stderr
    assert "--set quality.skip_invalid=true" in res.stderr
    ok = subprocess.run([*base, "--output", str(tmp_path / "o2"), "--set", "quality.skip_invalid=true"],
                        capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ok.returncode == 0, ok.stderr


@pytest.mark.shared
def test_default_pipeline_rejects_little_clean_text(tmp_path: Path, shared_data: Path) -> None:
    """The shipped starter model with the default threshold: < 5% of clean documents rejected by quality."""
    import gzip

    inputs = []
    for name in ("ku_wikipedia_leads.jsonl.gz", "livedoor_news.jsonl.gz"):
        with gzip.open(shared_data / "clean" / name, "rt", encoding="utf-8") as f:
            lines = [line for line, _ in zip(f, range(800), strict=False)]
        path = tmp_path / "in" / name.replace(".gz", "")
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(lines), encoding="utf-8")
        inputs.append(path)
    default = yaml.safe_load((ROOT / "pipelines" / "ja.yaml").read_text(encoding="utf-8"))
    names = [s["stage"] for s in default["stages"]]
    default["stages"] = default["stages"][: names.index("quality") + 1]  # the default stages up to quality
    pipeline = tmp_path / "to-quality.yaml"
    pipeline.write_text(yaml.safe_dump(default, allow_unicode=True), encoding="utf-8")
    for path in inputs:
        opts = RunOptions([str(path)], tmp_path / path.stem, use_ray=False, progress=False)
        summary = Runner(load_pipeline(pipeline), opts, Console(file=io.StringIO())).run()
        quality = next(s for s in summary["stages"] if s["stage"] == "quality")
        assert quality["rejected_total"] / quality["docs_in"] < 0.05, (path.name, quality["rejected"])


def test_sample_a_run_folder_with_its_own_model_and_threshold(tmp_path: Path, sample_run: Path) -> None:
    from cleaning.evaluation.runread import quality_of_run

    quality = quality_of_run(sample_run)
    assert quality.model_path == ROOT / "annotations" / "model" / "quality.bin"
    for strategy in ("uncertain", "per-cluster"):
        out = tmp_path / f"{strategy}.jsonl"
        cmd = [sys.executable, "-m", "cleaning", "annotations", "sample", str(sample_run), "--n", "12"]
        res = subprocess.run([*cmd, "--out", str(out), "--strategy", strategy], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert str(quality.model_path) in res.stdout
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 12 and all(len(r["text"]) <= 600 or "\n" not in r["text"] for r in rows)
        assert all(f"threshold {quality.stage.threshold:.3f}" in r["note"] for r in rows)
    docs = read_corpus([quality.clustered])
    clusters = {d.id: d.fields["cluster"] for d in docs}
    assert len({clusters[r["source"]] for r in rows}) == min(12, len(set(clusters.values()))), "spread over clusters"


def test_a_run_warns_when_the_annotations_changed_since_its_model(tmp_path: Path, trained: Path) -> None:
    from cleaning.stages.quality import stale_annotations

    folder = trained.parent
    assert stale_annotations(trained, [folder]) == []
    write_jsonl(folder / "new.jsonl", annotations(1)[:3])
    try:
        [warning] = stale_annotations(trained, [folder])
        assert "new.jsonl" in warning and "make train-quality" in warning
    finally:
        (folder / "new.jsonl").unlink()


def test_the_report_uses_the_runs_threshold_and_calibrated_noise(sample_run: Path) -> None:
    overview = json.loads((sample_run / "report" / "report.json").read_text())
    card = json.loads((ROOT / "annotations" / "model" / "quality.card.json").read_text())
    assert overview["noise_threshold"] == card["threshold"]
    rows = pq.read_table(sample_run / "report" / "clusters.parquet").to_pylist()
    assert all(r["noisy_share"] == pytest.approx(r["quality_mean"]) for r in rows if r["quality_mean"] is not None)


def test_quality_train_takes_labelled_pages_as_the_rules_stage_of_a_run_leaves_them(tmp_path: Path) -> None:
    from cleaning.evaluation.quality_pages import pages_as_rules_leave_them
    from tests.pages import labelled_corpus

    corpus, labels = labelled_corpus(tmp_path / "data", sites=6, pages_per_site=5, seed=5)
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "normalize"}, {"stage": "rules"}])
    opts = RunOptions([str(corpus)], tmp_path / "run", use_ray=False, progress=False)
    Runner(load_pipeline(pipeline), opts, Console(file=io.StringIO())).run()
    docs, counts = pages_as_rules_leave_them(tmp_path / "run", [labels], min_chars=0)
    raw = {json.loads(line)["id"]: json.loads(line) for line in corpus.read_text().splitlines()}
    verdicts = [json.loads(line)["page"] for line in labels.read_text().splitlines()]
    assert counts["used"] == sum(v != "BORDER" for v in verdicts) and counts["not_in_run"] == 0
    assert all(d.group.startswith("site:site") for d in docs)
    assert sum(len(d.text) for d in docs) < sum(len(r["text"]) for r in raw.values()), "boilerplate lines are gone"
    ann = write_jsonl(tmp_path / "ann" / "a.jsonl", annotations(3))
    cmd = [sys.executable, "-m", "cleaning", "quality", "train", "-a", str(ann), "--pages", str(labels),
           "--run", str(tmp_path / "run"), "--page-min-chars", "0", "--folds", "3"]  # fmt: skip
    cmd += ["--out", str(tmp_path / "q.bin")]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    card = json.loads((tmp_path / "q.card.json").read_text())
    assert card["data"]["pages"]["used"] == counts["used"] and card["cv"]["pages"]["documents"] == counts["used"]
    no_run = subprocess.run([*cmd[: cmd.index("--run")], "--out", str(tmp_path / "x.bin")], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)  # fmt: skip
    assert no_run.returncode == 2 and "--pages needs --run" in no_run.stderr
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "not-in-this-corpus", "page": "KEEP", "labels": "C"}])
    wrong = [*cmd[: cmd.index("--pages") + 1], str(other), *cmd[cmd.index("--pages") + 2 :]]
    res = subprocess.run(wrong, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 2 and "none of the labelled pages is in the run" in res.stderr


def test_a_quantised_model_is_smaller_and_scores_alike(tmp_path: Path, trained: Path) -> None:
    data, report = training_set([write_jsonl(tmp_path / "ann.jsonl", annotations())], skip_invalid=False)
    small = tmp_path / "q" / "quality.bin"
    card = train_and_describe(data, report, small, folds=3, quantize=True)
    assert card["quantized"] is True
    assert small.stat().st_size < trained.stat().st_size / 3
    docs = GOOD + NOISE
    a, b = qm.QualityModel.load(trained).score(docs), qm.QualityModel.load(small).score(docs)
    assert np.abs(a - b).max() < 0.1 and ((a > 0.5) == (b > 0.5)).all()
