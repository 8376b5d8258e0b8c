"""`cleaning rules train`: models learned from line-labelled pages, written as data next to the rules."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from cleaning.errors import CleaningError
from cleaning.evaluation.evaluate import evaluate
from cleaning.pipeline import load_pipeline
from cleaning.rules.engine import RulesEngine
from cleaning.rules.ruleset import DEFAULT_RULES_DIR, load_rules
from cleaning.runner import Runner, RunOptions
from tests.conftest import ROOT
from tests.helpers import write_pipeline
from tests.pages import labelled_corpus


def run(corpus: Path, out: Path, rules_dir: Path, disable: tuple[str, ...] = ()) -> None:
    rules = {"stage": "rules", "rules_dir": str(rules_dir), "disable": list(disable)}
    pipeline = write_pipeline(out.parent / f"{out.name}.yaml", [{"stage": "normalize"}, rules])
    opts = RunOptions([str(corpus)], out, use_ray=False, progress=False)
    Runner(load_pipeline(pipeline), opts, Console(file=io.StringIO())).run()


def test_train_writes_models_that_the_stage_uses(tmp_path: Path) -> None:
    corpus, labels = labelled_corpus(tmp_path / "data", sites=8, pages_per_site=6, seed=3)
    rules_dir = Path(shutil.copytree(DEFAULT_RULES_DIR, tmp_path / "rules"))
    for f in (rules_dir / "models").iterdir():
        f.unlink()  # nothing to lean on: the run below needs no model, training writes them
    without_models = load_rules(rules_dir, disable=["lines.model", "doc.page_model"])
    assert RulesEngine(without_models).line_model is None
    run(corpus, tmp_path / "before", rules_dir, ("lines.model", "doc.page_model"))  # the corpus training reads
    records = labels.read_text().splitlines(keepends=True)
    train, held_out = tmp_path / "train.jsonl", tmp_path / "held_out.jsonl"
    train.write_text("".join(r for r in records if not r.startswith('{"id": "s7')))
    held_out.write_text("".join(r for r in records if r.startswith('{"id": "s7')))  # site 7's 6 pages
    result = subprocess.run(
        [sys.executable, "-m", "cleaning", "rules", "train", str(train), "--run", str(tmp_path / "before"),
         "--rules-dir", str(rules_dir), "--folds", "4", "--no-ray", "--test", str(held_out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.split())
    assert "cross-validated (4 folds by site)" in shown and "held-out (6 pages, rules stage alone" in shown
    card = json.loads((rules_dir / "models" / "lines.json").read_text())
    assert card["pages_scored"] == 42 and card["features"] and card["cv"]["line_auc"] > 0.9
    assert card["cv"]["held_out"]["pages"] == 6
    overlap = subprocess.run(
        [sys.executable, "-m", "cleaning", "rules", "train", str(labels), "--run", str(tmp_path / "before"),
         "--rules-dir", str(rules_dir), "--no-ray", "--test", str(held_out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert overlap.returncode == 2 and "6 held-out pages are also training pages" in overlap.stderr
    assert (rules_dir / "models" / "pages.txt").is_file()
    engine = RulesEngine(load_rules(rules_dir))
    assert engine.line_model is not None and engine.page_model is not None
    run(corpus, tmp_path / "after", rules_dir)
    scores = evaluate(tmp_path / "after", [labels]).scores
    site7 = evaluate(tmp_path / "after", [held_out]).scores.as_dict()
    figures = ("purity", "content_recall", "page_precision", "page_recall", "boilerplate_lines_mean")
    assert {k: site7[k] for k in figures} == {k: card["cv"]["held_out"][k] for k in figures}, "as the stage decides"
    assert scores.boilerplate_lines_mean < 1, "the promo, contact and related-title lines the patterns miss are gone"
    assert scores.content_recall > 0.9


def test_a_model_trained_on_other_features_is_refused(tmp_path: Path) -> None:
    rules_dir = Path(shutil.copytree(DEFAULT_RULES_DIR, tmp_path / "rules"))
    card_path = rules_dir / "models" / "lines.json"
    card = json.loads(card_path.read_text())
    card["features"] = [*card["features"][:-1], "a_feature_from_elsewhere"]
    card_path.write_text(json.dumps(card))
    with pytest.raises(CleaningError, match=r"trained on other features .* retrain with `cleaning rules train`"):
        RulesEngine(load_rules(rules_dir))
    (rules_dir / "models" / "lines.txt").unlink()
    with pytest.raises(CleaningError, match="not found"):
        RulesEngine(load_rules(rules_dir))


def test_training_needs_labelled_pages_in_the_run(tmp_path: Path) -> None:
    corpus, labels = labelled_corpus(tmp_path / "data", sites=2, pages_per_site=2)
    run(corpus, tmp_path / "out", DEFAULT_RULES_DIR)
    result = subprocess.run(
        [sys.executable, "-m", "cleaning", "rules", "train", str(labels), "--run", str(tmp_path / "out"),
         "--rules-dir", str(tmp_path / "unused"), "--no-ray"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2 and "error:" in result.stderr


def test_training_sees_page_repeated_as_the_stage_does() -> None:
    """The page model learns from the lines the stage shows it: later copies of a repeated line go
    (page.repeated, judged on what the line model keeps) before the page features, in training too."""
    import numpy as np

    from cleaning.evaluation.train import LabelledPage, build, kept_lines
    from cleaning.pagelabels import PageLabel
    from cleaning.rules.linefeatures import LineStats

    rules = load_rules()
    notice = "このサイトは眼と眼鏡の役に立つ情報をお届けするポータルサイトです。"
    body = "レンズは度数と用途で選びます。近くを見る時間が長い方には中近両用が向いています。"
    lines = ["遠近両用レンズの選び方", notice, body, notice]
    label = PageLabel("p1", "NCCC", "KEEP", "test:1", text="\n".join(lines))
    page = LabelledPage(label, None, lines, list(range(4)), "NCCC")
    ts = build([page], rules, LineStats())
    keep = kept_lines(ts, 0, np.zeros(4), 0.35, rules)
    assert keep.tolist() == [True, True, True, False], "the second copy of the notice goes"
    engine = RulesEngine(rules, models=False)
    assert engine.analyse("\n".join(lines), None).removed_by == [None, None, None, "page.repeated"]
