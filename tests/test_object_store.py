"""Inputs in object storage, against a real S3-compatible server (moto's, on 127.0.0.1, started and
stopped here): the same bytes as a run on local copies, resume by object version, one-line errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleaning.errors import CleaningError
from cleaning.inputs import resolve_inputs
from tests.conftest import ROOT, RULES_ONLY, SAMPLE, parquet_files, run_pipeline
from tests.test_warc import japanese_pages
from tests.warcs import write_warc

BUCKET = "corpus"


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback, and the environment that points boto/s3fs at it."""
    server_mod = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir(BUCKET)
        yield env
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def upload(local: Path, prefix: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem()
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"{BUCKET}/{prefix}/{path.relative_to(local).as_posix()}")


def corpus(tmp_path: Path) -> Path:
    """The bundled sample and a WARC, in nested folders."""
    local = tmp_path / "crawl"
    shutil.copytree(SAMPLE, local / "jsonl")
    write_warc(local / "warc" / "pages.warc.gz", japanese_pages())
    return local


def test_a_run_on_s3_inputs_writes_the_same_bytes_as_one_on_local_copies(s3: dict, tmp_path: Path) -> None:
    local = corpus(tmp_path)
    upload(local, "crawl")
    remote = resolve_inputs([f"s3://{BUCKET}/crawl/"]).files
    assert [str(f) for f in remote] == [
        f"s3://{BUCKET}/crawl/jsonl/part-00000.jsonl.gz",
        f"s3://{BUCKET}/crawl/jsonl/part-00001.jsonl.gz",
        f"s3://{BUCKET}/crawl/jsonl/part-00002.jsonl.gz",
        f"s3://{BUCKET}/crawl/warc/pages.warc.gz",
    ]
    assert len(resolve_inputs([f"s3://{BUCKET}/crawl/**/*.warc.gz"]).files) == 1

    from_s3 = run_pipeline([f"s3://{BUCKET}/crawl/"], tmp_path / "out-s3", RULES_ONLY)  # type: ignore[list-item]
    from_disk = run_pipeline([local], tmp_path / "out-local", RULES_ONLY)
    assert from_s3["conservation"] == from_disk["conservation"]
    assert from_s3["conservation"]["kept"] > 0
    assert parquet_files(tmp_path / "out-s3") == parquet_files(tmp_path / "out-local")


def test_a_rerun_reads_only_the_objects_that_changed(s3: dict, tmp_path: Path) -> None:
    local = corpus(tmp_path)
    upload(local, "again")
    url = f"s3://{BUCKET}/again/"
    first = run_pipeline([url], tmp_path / "out", RULES_ONLY)  # type: ignore[list-item]
    done = tmp_path / "out" / "00-ingest" / "_done"
    before = {p.name: p.stat().st_mtime_ns for p in done.iterdir()}

    run_pipeline([url], tmp_path / "out", RULES_ONLY)  # type: ignore[list-item]
    assert {p.name: p.stat().st_mtime_ns for p in done.iterdir()} == before  # nothing re-read

    write_warc(local / "warc" / "pages.warc.gz", japanese_pages()[:2])  # the object changes
    upload(local / "warc", "again/warc")
    summary = run_pipeline([url], tmp_path / "out", RULES_ONLY)  # type: ignore[list-item]
    after = {p.name: p.stat().st_mtime_ns for p in done.iterdir()}
    changed = {name for name in before if after[name] != before[name]}
    assert len(changed) == 1 and changed.pop().startswith("warc_pages.warc.gz")
    assert summary["conservation"]["records_in"] == first["conservation"]["records_in"] - 3  # 5 pages, now 2


def test_a_missing_bucket_or_missing_credentials_is_one_line(s3: dict, tmp_path: Path) -> None:
    with pytest.raises(CleaningError, match=r"input not found: s3://no-such-bucket/x/ \(The specified bucket"):
        resolve_inputs(["s3://no-such-bucket/x/"])
    with pytest.raises(CleaningError, match="no input files match"):
        resolve_inputs([f"s3://{BUCKET}/crawl/*.parquet"])

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ENDPOINT_URL": s3["AWS_ENDPOINT_URL"], "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    env |= {"AWS_CONFIG_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    cmd = [sys.executable, "-m", "cleaning", "run", str(RULES_ONLY), "--input", f"s3://{BUCKET}/crawl/"]
    cmd += ["--output", str(tmp_path / "out"), "--no-ray", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Unable to locate credentials" in lines[0] and "AWS_ACCESS_KEY_ID" in lines[0]
    assert "Traceback" not in proc.stderr
