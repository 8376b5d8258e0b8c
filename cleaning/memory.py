"""Peak resident memory of this process, per unit of work: what a worker needed for one shard.

Linux keeps the peak (VmHWM) per process; writing 5 to /proc/self/clear_refs resets it, so a
long-lived Ray worker can report the peak of each task rather than of its whole life.
"""

from __future__ import annotations

import re
import resource

_HWM = re.compile(r"^VmHWM:\s+(\d+) kB", re.MULTILINE)


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # not Linux, or not allowed: the peak then covers the process's life so far
        pass


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            match = _HWM.search(f.read())
        if match:
            return round(int(match.group(1)) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
