"""Weights from data leads (`pipelines/weights.yaml`) and the balance stage that applies them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cleaning.document import Doc, Reject
from cleaning.errors import CleaningError
from cleaning.genres.weights import Weights, load_weights
from cleaning.stages.balance import Balance, BalanceConfig
from tests.conftest import PIPELINE, ROOT, SAMPLE, genre_model_id, output_ids, run_pipeline


def weights_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "weights.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_weights_file_is_valid_and_changes_nothing() -> None:
    assert load_weights(ROOT / "pipelines" / "weights.yaml").is_identity


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: {1: -0.5}", "clusters.1: weight must be a number >= 0"),
        ("clusters: {abc: 1}", "'abc' is not a cluster id"),
        ("domains: [1, 2]", "domains must be a mapping"),
        ("weights: {1: 2}", "unknown key"),
        ("default: yes", "default: weight must be a number"),
        ("clusters: {1: .nan}", "weight must be a number >= 0"),
        ("clusters: {1: [", "not valid YAML"),
    ],
)
def test_bad_weights_are_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = weights_file(tmp_path, text)
    with pytest.raises(CleaningError, match=message) as info:
        load_weights(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_cluster_weight_wins_over_domain_weight_over_default() -> None:
    w = Weights(default=0.5, domains={1: 2.0}, clusters={3: 0.0})
    assert (w.of(3, 1), w.of(4, 1), w.of(5, 0)) == (0.0, 2.0, 0.5)


def docs(cluster: int, n: int, domain: int = 0) -> list[Doc]:
    return [Doc(f"c{cluster}-{i}", "本文", {"cluster": cluster, "domain": domain}) for i in range(n)]


def test_balance_drops_downsamples_and_repeats_deterministically(tmp_path: Path) -> None:
    path = weights_file(tmp_path, "clusters: {0: 0, 1: 0.5, 2: 2, 3: 1.5}\ndomains: {9: 0.25}")
    batch = docs(0, 100) + docs(1, 1000) + docs(2, 50) + docs(3, 1000) + docs(4, 1000, domain=9)
    result = Balance(BalanceConfig(weights=str(path))).process(batch)
    again = Balance(BalanceConfig(weights=str(path))).process([Doc(d.id, d.text, dict(d.fields)) for d in batch])
    assert [d.id for d in result.kept] == [d.id for d in again.kept], "the same documents every run"
    assert len(result.kept) + len(result.rejected) == len(batch)
    reasons = Counter((r.doc.fields["cluster"], r.reason) for r in result.rejected)
    assert reasons[(0, "balance.dropped")] == 100
    kept = Counter(d.fields["cluster"] for d in result.kept)
    assert 430 <= kept[1] <= 570 and reasons[(1, "balance.downsampled")] == 1000 - kept[1]
    assert 200 <= kept[4] <= 300, "the domain weight applies to clusters without their own"
    repeats = Counter((d.fields["cluster"], d.fields["repeat"]) for d in result.kept)
    assert repeats[(2, 2)] == 50
    assert 430 <= repeats[(3, 2)] <= 570 and repeats[(3, 1)] + repeats[(3, 2)] == 1000
    assert result.counters["balance.repeated_copies"] == 50 + repeats[(3, 2)]
    assert all(isinstance(r, Reject) and "weight" in r.detail for r in result.rejected)


def test_balance_without_genres_is_a_clear_error() -> None:
    with pytest.raises(CleaningError, match="put the genres stage before it"):
        Balance(BalanceConfig()).process([Doc("a", "本文")])


def test_a_bad_weights_file_fails_before_the_run(tmp_path: Path) -> None:
    with pytest.raises(CleaningError, match="weights file not found"):
        BalanceConfig(weights=str(tmp_path / "nope.yaml"))


def test_editing_weights_reruns_only_balance_and_conserves_documents(tmp_path: Path, sample_run: Path) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(sample_run, out)
    (out / "report").exists() and shutil.rmtree(out / "report")
    tokenizer = (out / "tokenizer" / "tokenizer.model").read_bytes()
    path = weights_file(tmp_path, f"genre_model: {genre_model_id(out)}\nclusters: {{0: 0}}")
    summary = run_pipeline([SAMPLE], out, PIPELINE, [f"balance.weights={path}"])
    by_stage = {s["stage"]: s for s in summary["stages"]}
    assert not by_stage["genres"]["ran"] and not by_stage["quality"]["ran"]
    assert by_stage["balance"]["ran"] and by_stage["balance"]["fresh_bytes"] > 0
    assert (
        by_stage["balance"]["rejected"]["balance.dropped"]
        == by_stage["balance"]["docs_in"] - by_stage["balance"]["kept"]
    )
    kept, rejected = output_ids(out)
    assert (
        sum(kept.values()) + sum(rejected.values())
        == json.loads((out / "summary.json").read_text())["conservation"]["records_in"]
    )
    assert by_stage["tokenize"]["ran"], "the corpus the tokenizer sees changed"
    assert (out / "tokenizer" / "tokenizer.model").read_bytes() == tokenizer, "weights changed the token ids"
    used = next(out.glob("*-tokenize/_prepare/artifacts/tokenizer.model")).read_bytes()
    assert used == tokenizer
