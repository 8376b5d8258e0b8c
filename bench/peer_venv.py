"""The peers' own virtualenv, bench/.venv-peers (gitignored): pinned versions, never project dependencies.

Every script that runs datatrove or HojiChar gets its python from `peer_python()`, so they all
use one venv with one set of pins. Bump a pin deliberately: results name the versions they ran.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "bench" / ".venv-peers"
PEERS = {
    "datatrove": "0.10.1",
    "hojichar": "0.18.1",
    "spacy": "3.8.18",
    "sudachipy": "0.7.0",
    "lxml-html-clean": "0.4.6",  # trafilatura's justext needs lxml.html.clean, split from lxml 5.2
}
PEER_SPECS = [
    f"datatrove[processing,io]=={PEERS['datatrove']}",
    f"hojichar[dedup]=={PEERS['hojichar']}",  # its LSH dedup needs the extra
    f"spacy=={PEERS['spacy']}",  # datatrove's Japanese word tokenizer: spaCy + Sudachi
    f"sudachipy=={PEERS['sudachipy']}",
    "sudachidict_core==20261015",
    f"lxml-html-clean=={PEERS['lxml-html-clean']}",
]


def peer_python() -> Path:
    """Create/reuse the peer venv and make sure the pinned versions are installed; return its python."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PEER_VENV.relative_to(ROOT)} …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "from importlib.metadata import version as v; import rensa, sudachidict_core\n"
            f"print(*(v(name) for name in {list(PEERS)!r}))",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or probe.stdout.split() != list(PEERS.values()):
        print(f"installing {' '.join(PEER_SPECS)} into the peer venv …", file=sys.stderr)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PEER_SPECS]
        subprocess.run(pip, check=True)
    return python
