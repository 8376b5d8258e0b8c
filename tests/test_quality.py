"""Annotations checks, training with CV and model card, P(noise) scoring, the stage, sampling."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from cleaning.errors import CleaningError
from cleaning.pipeline import load_pipeline
from cleaning.quality import model as qm
from cleaning.quality.annotations import check_annotations, training_set
from cleaning.quality.sample import read_corpus, sample
from cleaning.quality.train import train_and_describe
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
FAST = (qm.TrainParams(representation="chars", word_ngrams=2),)


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
    train_and_describe(data, report, folder / "quality.bin", grid=FAST, folds=3, learning_curve=True)
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
    with pytest.raises(CleaningError, match="4 invalid annotation lines"):
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
    assert set(at) >= {"accuracy", "good", "noise", "confusion", "good_wrongly_rejected"}
    assert card["threshold"] >= 0.5
    assert [p["fraction"] for p in card["learning_curve"]] == [0.25, 0.5, 0.75, 1.0]
    assert card["cv"]["at_0.5"]["accuracy"] > 0.8, "an easy synthetic task must be learnt"
    assert trained.with_suffix(".card.md").read_text().startswith("# Quality model card")


def test_training_is_reproducible(tmp_path: Path, trained: Path) -> None:
    data, report = training_set([write_jsonl(tmp_path / "ann.jsonl", annotations())], skip_invalid=False)
    train_and_describe(data, report, tmp_path / "again.bin", grid=FAST, folds=3, learning_curve=False)
    docs = GOOD + NOISE + ["よくわからない文章です"]
    a = qm.score_documents(qm.load(trained), docs, "chars", 300)
    b = qm.score_documents(qm.load(tmp_path / "again.bin"), docs, "chars", 300)
    assert np.allclose(a, b)


class _FakeModel:
    """predict() returns labels ordered by probability, as fastText does."""

    def predict(self, lines: list[str], k: int = 2):
        return [("__label__good", "__label__noise")] * len(lines), [np.array([0.7, 0.3])] * len(lines)


def test_p_noise_is_read_from_the_noise_label_not_the_top_label() -> None:
    assert qm.p_noise(_FakeModel(), ["a b", "c d"]).tolist() == [0.3, 0.3]


def test_long_documents_are_scored_as_a_length_weighted_mean_of_chunks(trained: Path) -> None:
    model = qm.load(trained)
    prose, ad = GOOD[1] * 10, NOISE[0] + " " + NOISE[1]
    [p_prose, p_ad] = qm.score_documents(model, [prose, ad], "chars", 300)
    [mixed] = qm.score_documents(model, [prose + "\n" + ad], "chars", 300)
    chunks = qm.chunks(prose + "\n" + ad, 300)
    assert len(chunks) == 2
    weights = np.array([len(c) for c in chunks], dtype=float)
    assert mixed == pytest.approx(float((weights * [p_prose, p_ad]).sum() / weights.sum()), abs=0.05)
    assert p_prose < 0.5 < p_ad


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


def test_uncertain_sampling_puts_documents_near_the_threshold_first(tmp_path: Path, trained: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(GOOD + NOISE)])
    docs = read_corpus([corpus])
    picked = sample(docs, 5, "uncertain", trained)
    card = json.loads(trained.with_suffix(".card.json").read_text())
    scores = qm.score_documents(qm.load(trained), [d.text for d in docs], "chars", 300)
    distance = sorted(abs(s - card["threshold"]) for s in scores)
    got = sorted(abs(float(p["note"].split("=")[1]) - card["threshold"]) for p in picked)
    assert got == pytest.approx(distance[:5], abs=1e-3)
    assert all(p["label"] is None for p in picked)
    assert sample(docs, 4, "random", None, seed=3) == sample(docs, 4, "random", None, seed=3)
    with pytest.raises(CleaningError, match="run the genres stage first"):
        sample(docs, 3, "per-cluster", trained)


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
    for path in inputs:
        opts = RunOptions([str(path)], tmp_path / path.stem, use_ray=False, progress=False)
        summary = Runner(load_pipeline(ROOT / "pipelines" / "ja.yaml"), opts, Console(file=io.StringIO())).run()
        quality = next(s for s in summary["stages"] if s["stage"] == "quality")
        assert quality["rejected_total"] / quality["docs_in"] < 0.05, (path.name, quality["rejected"])
