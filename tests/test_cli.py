"""The CLI: clear one-line errors with exit code 2, help with examples, stats and stages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NORMALIZE_ONLY, PIPELINE, ROOT


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleaning", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


@pytest.fixture
def tiny_input(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "テスト文書です。"}, ensure_ascii=False) + "\n")
    return path


def assert_clean_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr


def test_missing_input_fails_fast(tmp_path: Path) -> None:
    result = cli(
        "run", str(PIPELINE), "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o"), "--no-ray"
    )
    assert_clean_error(result, "input not found")
    assert not (tmp_path / "o").exists()


def test_loading_the_stages_leaves_scikit_learn_and_scipy_sparse_unimported() -> None:
    """Every command that reads a pipeline, and every Ray worker, loads all stages; scikit-learn and
    SciPy took 2 of its 3 seconds, before even a one-line error. Only training and fitting need them."""
    heavy = "{'sklearn', 'scipy.sparse', 'scipy.stats'}"  # numba imports scipy's package itself, which is cheap
    code = f"import sys, cleaning.stages; print(sorted(set(sys.modules) & {heavy}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("stages: [{stage: normalise}]", "unknown stage 'normalise'"),
        ("stages: [{stage: normalize, form: NFKC}]", "unknown option(s) ['form']"),
        ("stages: [{stage: normalize, unicode_form: NFX}]", "unicode_form"),
        ("input: {shard_mb: lots}\nstages: [normalize]", "shard_mb"),
        ("stages: [normalize\n  - x: [", "invalid YAML"),
        ("stagez: []", "unknown top-level keys"),
    ],
)
def test_invalid_pipeline_config_is_a_clear_error(
    tmp_path: Path, tiny_input: Path, yaml_text: str, message: str
) -> None:
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text(yaml_text)
    result = cli("run", str(pipeline), "--input", str(tiny_input), "--output", str(tmp_path / "o"), "--no-ray")
    assert_clean_error(result, message)
    assert str(pipeline) in result.stderr


def test_missing_pipeline_file(tmp_path: Path, tiny_input: Path) -> None:
    result = cli("run", "nope.yaml", "--input", str(tiny_input), "--output", str(tmp_path / "o"))
    assert_clean_error(result, "pipeline config not found")


def test_run_then_stats(tmp_path: Path, tiny_input: Path) -> None:
    out = tmp_path / "o"
    result = cli(
        "run", str(NORMALIZE_ONLY), "-i", str(tiny_input), "-o", str(out), "--no-ray", "--set", "input.shard_mb=1"
    )
    assert result.returncode == 0, result.stderr
    assert "normalize" in result.stdout and "conservation: 1 input records = 1 kept + 0 rejected" in result.stdout
    again = cli("stats", str(out))
    assert again.returncode == 0 and "normalize" in again.stdout
    assert json.loads((out / "run.json").read_text())["input"]["shard_mb"] == 1


def test_bad_override(tmp_path: Path, tiny_input: Path) -> None:
    result = cli("run", str(PIPELINE), "-i", str(tiny_input), "-o", str(tmp_path / "o"), "--set", "translate.x=1")
    assert_clean_error(result, "no stage 'translate'")
    result = cli("run", str(PIPELINE), "-i", str(tiny_input), "-o", str(tmp_path / "o"), "--set", "dedup.x=1")
    assert_clean_error(result, "x")


def test_stats_without_a_run(tmp_path: Path) -> None:
    assert_clean_error(cli("stats", str(tmp_path)), "no finished run")


def test_stages_lists_options() -> None:
    result = cli("stages")
    assert result.returncode == 0
    assert "normalize" in result.stdout and "unicode_form" in result.stdout and "shard_mb" in result.stdout


@pytest.mark.parametrize("command", ["run", "stats", "stages"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0
    assert "Example: cleaning " + command in result.stdout


def test_report_command_writes_the_report_and_fails_cleanly(tmp_path: Path, sample_run: Path) -> None:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(sample_run, out)
    result = cli("report", str(out), "--no-ray", "--dest", str(tmp_path / "rep"))
    assert result.returncode == 0, result.stderr
    assert "index.html" in result.stdout and (tmp_path / "rep" / "clusters.csv").is_file()
    assert_clean_error(cli("report", str(tmp_path / "nothing"), "--no-ray"), "holds no cleaning run")
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters: {0: -1}\n")
    assert_clean_error(cli("report", str(out), "--no-ray", "--weights", str(bad)), "weight must be a number >= 0")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runn"], "No such command 'runn'. Did you mean 'run'? (see cleaning --help)"),
        (
            ["run", "pipelines/ja.yaml", "--wokers", "2"],
            "No such option: --wokers (Possible options: --work, --workers)",
        ),
        (["run", "pipelines/ja.yaml"], "Missing option '--input'"),
        (["stats"], "Missing argument 'output'"),
        (["run", "pipelines/ja.yaml", "-i", "x", "-o", "y", "--workers", "abc"], "Invalid value for '--workers'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args: list[str], message: str) -> None:
    result = cli(*args)
    assert_clean_error(result, message)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_version_and_bare_command() -> None:
    from cleaning import __version__

    version = cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"cleaning {__version__}"
    bare = cli()
    assert bare.returncode == 2 and "Traceback" not in bare.stderr + bare.stdout
    assert "Usage: cleaning" in bare.stdout + bare.stderr


def test_a_wrong_text_field_fails_with_the_field_to_use(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    rows = [{"id": str(i), "content": "本文です。" * (i + 1), "title": "題"} for i in range(3)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = cli("run", str(NORMALIZE_ONLY), "--input", str(path), "--output", str(tmp_path / "o"), "--no-ray")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "all 3 records lack a text field 'text'" in result.stderr
    assert "--set input.text_field=content" in result.stderr
    ok = cli("run", str(NORMALIZE_ONLY), "--input", str(path), "--output", str(tmp_path / "o"), "--no-ray",
             "--set", "input.text_field=content")  # fmt: skip
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("setting", ["input.max_doc_mb=-1", "input.shard_mb=0"])
def test_impossible_input_sizes_are_refused(setting: str, tiny_input: Path, tmp_path: Path) -> None:
    result = cli(
        "run", str(NORMALIZE_ONLY), "-i", str(tiny_input), "-o", str(tmp_path / "o"), "--no-ray", "--set", setting
    )
    assert_clean_error(result, f"{setting.split('.')[1].split('=')[0]} must be a number above 0")


def test_the_summary_keeps_edits_apart_from_other_counts(sample_run: Path) -> None:
    import io

    from rich.console import Console

    from cleaning.stats import load_summary, render

    buffer = io.StringIO()
    render(load_summary(sample_run), Console(file=buffer, width=200))
    text = buffer.getvalue()
    edits, _, rest = text.partition("edits inside documents")
    assert "MB/s/core" in text and "/cpu" not in text
    assert "tokens" not in rest.split("conservation")[0], "tokens written are not an edit inside documents"
    assert "other counts" in edits and "tokens" in edits.split("other counts")[1]


def test_a_log_file_gets_one_line_per_warning(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    long_text = "壊れた" * 60
    path.write_text(json.dumps({"id": "ok", "text": "本文です。"}, ensure_ascii=False) + "\n"
                    + '{"id": "x", "text": "' + long_text + "\n", encoding="utf-8")  # fmt: skip
    result = cli("run", str(NORMALIZE_ONLY), "-i", str(path), "-o", str(tmp_path / "o"), "--no-ray")
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if "broken_json" in line]
    assert warning.startswith("warning: bad.jsonl:2: broken_json") and len(warning) > 80
