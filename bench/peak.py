"""Run a command in this Python and report its peak RSS from /proc/self/status (VmHWM).

`wait4`'s ru_maxrss is wrong for a child of a large process: the child starts as a copy of the
parent (vfork), and Linux carries that image's high-water mark across exec. VmHWM belongs to the
new address space only. Usage: python bench/peak.py OUT_FILE -m cleaning run ...
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def vm_hwm_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


if __name__ == "__main__":
    out, module, args = sys.argv[1], sys.argv[3], sys.argv[4:]
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        Path(out).write_text(str(vm_hwm_mb()))
