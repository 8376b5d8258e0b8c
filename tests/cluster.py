"""A two-node Ray cluster on loopback for tests: head + one more node, 1 CPU each, in a network
namespace that has only loopback (Ray refuses a second node under our loopback switch, and
otherwise listens on every interface), with an S3 server (moto's) beside it. Every process in the
namespace is the test session's, and all are killed when it ends."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

RAY_PORT = 6390
S3_PORT = 5123
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
}


@dataclass
class Cluster:
    inside: list[str]  # prefix that runs a command in the namespace
    address: str
    env: dict[str, str]
    node_work: Path  # the second node's own work folder for runs in object storage

    def popen(self, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
        return subprocess.Popen([*self.inside, *cmd], env={**self.env, **(env or {})}, **quiet)  # type: ignore[call-overload]

    def run(self, cmd: list[str], timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.inside, *cmd], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT
        )


def _netns() -> str | None:
    """A fresh network namespace with only loopback: a multi-node Ray in it can bind nowhere else."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        return None
    name = f"cleaning-ray-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        return None
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    return name


@contextlib.contextmanager
def two_nodes(node_work: Path) -> Iterator[Cluster]:
    """Start the namespace, the head, then the second node (its workers told their own work folder
    with CLEANING_NODE_WORK), and the S3 server; wait until both nodes are alive."""
    ns = _netns()
    if ns is None:
        pytest.skip("needs root and `ip netns` for a loopback-only network namespace")
    base = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    base |= {"RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT), **S3_ENV}
    cluster = Cluster(["ip", "netns", "exec", ns], f"127.0.0.1:{RAY_PORT}", base, node_work)
    ray_bin = str(Path(sys.executable).parent / "ray")
    temp_dir = Path(tempfile.mkdtemp(prefix="ray2-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    common = [
        "--block",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        "--memory=2000000000",
        "--object-store-memory=200000000",
        "--disable-usage-stats",
    ]
    try:
        head = ["start", "--head", f"--port={RAY_PORT}", "--include-dashboard=false", f"--temp-dir={temp_dir}"]
        cluster.popen([ray_bin, *head, *common])
        cluster.popen(
            [ray_bin, "start", f"--address={cluster.address}", *common], env={"CLEANING_NODE_WORK": str(node_work)}
        )
        cluster.popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(S3_PORT)])
        probe = (
            f"import ray, time\nray.init(address='{cluster.address}', logging_level='ERROR')\n"
            "for _ in range(90):\n    n = sum(x['Alive'] for x in ray.nodes())\n    if n >= 2: break\n"
            "    time.sleep(1)\nprint(n)"
        )
        nodes = None
        for _ in range(30):  # the head takes a few seconds to come up
            nodes = cluster.run([sys.executable, "-c", probe], timeout=150)
            if nodes.returncode == 0:
                break
            time.sleep(1)
        assert nodes is not None and nodes.stdout.strip() == "2", nodes.stderr if nodes else ""
        yield cluster
    finally:
        for _ in range(20):  # every process in the namespace is this test's
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.5)
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        shutil.rmtree(temp_dir, ignore_errors=True)
