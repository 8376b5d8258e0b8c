"""Inputs in object storage, against a real S3-compatible server (moto's, on 127.0.0.1, started and
stopped here): the same bytes as a run on local copies, resume by object version, one-line errors."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
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


# -- the run's output in object storage ------------------------------------------------------


def data_files(root: Path) -> dict[str, bytes]:
    """Every file of a run but its JSON and YAML notes (those hold timings and the output's path)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix not in (".json", ".yml", ".yaml") and p.name != ".lock"
    }


def download(prefix: str, dest: Path) -> Path:
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    for key in fs.find(f"{BUCKET}/{prefix}"):
        target = dest / key.removeprefix(f"{BUCKET}/{prefix}/")
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(key, str(target))
    return dest


def etags(prefix: str) -> dict[str, str]:
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    found = fs.find(f"{BUCKET}/{prefix}", detail=True)
    return {k.removeprefix(f"{BUCKET}/{prefix}/"): v.get("ETag", "") for k, v in found.items() if v["type"] == "file"}


def test_a_run_written_to_s3_holds_the_bytes_of_a_local_run(
    s3: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default pipeline, every stage and product: shards, rejects, models, token files."""
    monkeypatch.setenv("CLEANING_WORK", str(tmp_path / "work"))
    local = run_pipeline([SAMPLE], tmp_path / "local")
    remote = run_pipeline([SAMPLE], f"s3://{BUCKET}/runs/ja")  # type: ignore[arg-type]
    assert remote["conservation"] == local["conservation"]
    assert remote["output"] == f"s3://{BUCKET}/runs/ja"
    assert remote["final_shards"] == f"s3://{BUCKET}/runs/ja/07-tokenize/shards"

    published = download("runs/ja", tmp_path / "published")
    files = data_files(published)
    assert files == data_files(tmp_path / "local")
    assert any(name.endswith(".bin") for name in files) and any(name.startswith("rejects/") for name in files)
    notes = {str(p.relative_to(tmp_path / "local")) for p in (tmp_path / "local").rglob("*.json")}
    assert {str(p.relative_to(published)) for p in published.rglob("*.json")} == notes
    assert not [name for name in files if name.endswith((".tmp", ".part"))]

    markers = {k: v for k, v in etags("runs/ja").items() if "_done" in k}
    monkeypatch.setenv("CLEANING_WORK", str(tmp_path / "another-machine"))  # its copy starts empty
    again = run_pipeline([SAMPLE], f"s3://{BUCKET}/runs/ja")  # type: ignore[arg-type]
    assert not any(stage["ran"] for stage in again["stages"]) and again["conservation"] == local["conservation"]
    assert {k: v for k, v in etags("runs/ja").items() if "_done" in k} == markers
    copy = next((tmp_path / "another-machine").iterdir())
    assert not list(copy.glob("*/shards/*.parquet"))  # nothing to do: no shard was fetched

    cmd = [sys.executable, "-m", "cleaning", "report", f"s3://{BUCKET}/runs/ja", "--no-ray"]
    report = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env={**os.environ})
    assert report.returncode == 0, report.stderr
    assert "reading s3://corpus/runs/ja through its copy" in report.stderr
    assert {"report/index.html", "report/clusters.csv"} <= set(etags("runs/ja"))  # published beside the run
    from cleaning.report.build import ReportOptions, build_report

    build_report(ReportOptions(tmp_path / "local"), lambda fn, items, label: [fn(i) for i in items], lambda _: None)
    report_csv = download("runs/ja/report", tmp_path / "report") / "clusters.csv"
    assert report_csv.read_bytes() == (tmp_path / "local" / "report" / "clusters.csv").read_bytes()


def test_a_run_killed_on_one_machine_resumes_from_s3_on_another(s3: dict, tmp_path: Path) -> None:
    """`kill -9` mid-run, then the same command with a fresh work folder (another machine): units
    whose markers reached the store are not redone, and the result is the uninterrupted run's."""
    url = f"s3://{BUCKET}/runs/killed"
    cmd = [sys.executable, "-m", "cleaning", "run", str(RULES_ONLY), "--input", str(SAMPLE), "--output", url]
    cmd += ["--no-ray", "--no-progress", "--set", "input.shard_mb=0.05"]
    env = {**os.environ}
    first = subprocess.Popen([*cmd, "--work", str(tmp_path / "machine-a")], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            if sum(k.startswith("02-rules/_done/") for k in etags("runs/killed")) >= 3:
                break
            time.sleep(0.05)
        assert first.poll() is None, "the run finished before it could be killed: make its shards smaller"
    finally:
        first.kill()
        first.wait()
    before = etags("runs/killed")
    markers = {k: v for k, v in before.items() if "/_done/" in k}
    assert markers and not any(k.startswith("summary.json") for k in before)

    again = subprocess.run(
        [*cmd, "--work", str(tmp_path / "machine-b")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    after = etags("runs/killed")
    assert {k: after[k] for k in markers} == markers  # not redone: the same marker objects
    assert not [k for k in after if k.endswith((".tmp", ".part")) or k.startswith(".")]

    expected = run_pipeline([SAMPLE], tmp_path / "local", RULES_ONLY, ["input.shard_mb=0.05"])
    published = download("runs/killed", tmp_path / "published")
    assert data_files(published) == data_files(tmp_path / "local")
    summary = json.loads((published / "summary.json").read_text())
    assert summary["conservation"] == expected["conservation"]


def test_output_in_s3_errors_are_one_line(s3: dict, tmp_path: Path) -> None:
    def cleaning(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "cleaning", *args]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env or {**os.environ})

    def run_to(url: str, work: str) -> dict:
        from rich.console import Console

        from cleaning.pipeline import load_pipeline
        from cleaning.runner import Runner, RunOptions

        opts = RunOptions([str(SAMPLE)], url, use_ray=False, progress=False, work=tmp_path / work)
        return Runner(load_pipeline(RULES_ONLY, []), opts, Console(file=io.StringIO())).run()

    run = ["run", str(RULES_ONLY), "--input", str(SAMPLE), "--no-ray", "--no-progress", "--work"]
    missing = cleaning(*run, str(tmp_path / "w1"), "--output", "s3://no-such-bucket/run")
    assert missing.returncode == 2 and "output bucket not found: s3://no-such-bucket/run" in missing.stderr
    no_keys = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_ENDPOINT_URL"}
    no_keys |= {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}
    no_keys |= {"AWS_EC2_METADATA_DISABLED": "true"}
    keys = cleaning(*run, str(tmp_path / "w2"), "--output", f"s3://{BUCKET}/runs/c", env=no_keys)
    assert keys.returncode == 2 and "Unable to locate credentials" in keys.stderr and "AWS_ACCESS_KEY_ID" in keys.stderr
    for proc in (missing, keys):  # the work folder's line, then the error's
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 2, proc.stderr

    upload(SAMPLE, "not-a-run")
    with pytest.raises(CleaningError, match="is not empty and holds no cleaning run"):
        run_to(f"s3://{BUCKET}/not-a-run", "w3")
    run_to(f"s3://{BUCKET}/runs/a", "w4")
    with pytest.raises(CleaningError, match=f"is the copy of s3://{BUCKET}/runs/a, not of s3://{BUCKET}/runs/b"):
        run_to(f"s3://{BUCKET}/runs/b", "w4")
    with pytest.raises(CleaningError, match="name a bucket and a folder"):
        run_to(f"s3://{BUCKET}", "w5")
    stats = cleaning("stats", f"s3://{BUCKET}/runs/a")
    assert stats.returncode == 0 and f"s3://{BUCKET}/runs/a" in stats.stdout and "rules" in stats.stdout


def test_a_two_node_cluster_needs_no_shared_filesystem_with_its_run_in_s3(tmp_path: Path, loopback_cluster) -> None:
    """Input and output in S3, and each node its own work folder (the second node's workers are
    told theirs with CLEANING_NODE_WORK): shards made on one node reach the other through the
    store, corpus-wide steps stay on the driver's node, and the bytes are the in-process run's."""
    cluster, node_b = loopback_cluster, loopback_cluster.node_work
    pipeline = tmp_path / "ja.yaml"
    pipeline.write_text((ROOT / "pipelines" / "ja.yaml").read_text().replace("shard_mb: 128", "shard_mb: 0.3"))
    setup = (
        "import s3fs, sys, time\nfor _ in range(60):\n    try:\n"
        "        fs = s3fs.S3FileSystem(); fs.mkdir('corpus'); break\n"
        "    except Exception:\n        time.sleep(0.5)\n"
        f"fs.put({str(SAMPLE)!r}, 'corpus/in', recursive=True)\nprint(len(fs.find('corpus/in')))"
    )
    made = cluster.run([sys.executable, "-c", setup], timeout=120)
    assert made.returncode == 0 and int(made.stdout) == 3, made.stderr
    local = run_pipeline([SAMPLE], tmp_path / "local", pipeline)
    cmd = [sys.executable, "-m", "cleaning", "run", str(pipeline), "--input", "s3://corpus/in/"]
    cmd += ["--output", "s3://corpus/runs/cluster", "--work", str(tmp_path / "driver"), "--no-progress"]
    result = cluster.run([*cmd, "--address", cluster.address])
    assert result.returncode == 0, result.stderr
    dest = str(tmp_path / "published")
    fetch = f"import s3fs; s3fs.S3FileSystem().get('corpus/runs/cluster', {dest!r}, recursive=True)"
    assert cluster.run([sys.executable, "-c", fetch]).returncode == 0
    pinned = (  # corpus-wide steps' items go only to actors on the driver's node
        "import ray\nfrom cleaning.executor import RayExecutor\n"
        f"ex = RayExecutor(None, {cluster.address!r})\nhome = ray.get_runtime_context().get_node_id()\n"
        "node = lambda _: ray.get_runtime_context().get_node_id()\n"
        "print(set(ex.map(node, list(range(8)), here=True)) == {home}, len(set(ex.map(node, list(range(8))))))"
    )
    nodes = cluster.run([sys.executable, "-c", pinned], timeout=120)
    assert nodes.stdout.split()[-2:] == ["True", "2"], nodes.stderr

    published = tmp_path / "published"
    assert json.loads((published / "run.json").read_text())["workers"] == 2
    assert json.loads((published / "summary.json").read_text())["conservation"] == local["conservation"]
    assert parquet_files(published) == parquet_files(tmp_path / "local")
    # b's tasks wrote into b's own folder; whether the driver later fetched every one of them
    # depends on which node Ray gave the next step's tasks, so that is not asserted
    assert any(node_b.rglob("*.parquet")), "no task ran on the second node"


def test_one_driver_per_run_in_s3_a_lease_that_dead_runs_give_up(s3: dict, tmp_path: Path) -> None:
    """The lease `<run>/.lock`: a second driver is refused while the first lives and renews it; a
    lease of a dead process of this host, or one not renewed for `stale` seconds, is taken over;
    a lease taken over during a run fails that run when it ends."""
    import s3fs

    from cleaning.outputlock import OutputBusy
    from cleaning.runstore import RunStore
    from cleaning.storelock import StoreLock

    store = RunStore.open(f"s3://{BUCKET}/runs/leased", tmp_path / "copy")
    fs = s3fs.S3FileSystem()
    key = f"{BUCKET}/runs/leased/.lock"
    with StoreLock(store), pytest.raises(OutputBusy, match=rf"in use by another run \(pid {os.getpid()} on "):
        StoreLock(store).__enter__()
    assert not fs.exists(key)  # released

    dead = subprocess.Popen(["true"])
    dead.wait()
    fs.pipe_file(key, json.dumps({"host": socket.gethostname(), "pid": dead.pid, "renewed": time.time()}).encode())
    with StoreLock(store):  # killed on this host: taken over at once
        assert json.loads(fs.cat_file(key))["pid"] == os.getpid()

    elsewhere = {"host": "another-machine", "pid": 1, "renewed": time.time() - 10}
    fs.pipe_file(key, json.dumps(elsewhere).encode())
    with pytest.raises(OutputBusy, match="pid 1 on another-machine, renewed 10 s ago"):
        StoreLock(store).__enter__()
    with StoreLock(store, stale=5):  # not renewed for longer than `stale`: its run is dead
        pass

    lease = StoreLock(store, renew=0.1)
    with pytest.raises(CleaningError, match="taken over during this run"), lease:
        fs.pipe_file(key, b"{}")  # another driver took it
        time.sleep(0.5)
