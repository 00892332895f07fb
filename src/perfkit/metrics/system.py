"""Process memory and its limit, read from /proc and the cgroup files (no psutil)."""

from __future__ import annotations

import functools
import os
import resource
import time
from pathlib import Path

__all__ = ["memory_limit", "process_start_time", "resident_memory"]

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# cgroup v1 reports "no limit" as a huge number near 2**63.
_UNLIMITED = 2**60
_STARTED = time.time()


def resident_memory() -> int:
    """The resident set size of this process in bytes (``/proc/self/statm``).

    Where /proc is missing (macOS), the peak RSS from ``getrusage`` is the best there is.
    """
    try:
        fields = Path("/proc/self/statm").read_text().split()
        return int(fields[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports kilobytes, macOS bytes.
        return peak if os.uname().sysname == "Darwin" else peak * 1024


def memory_limit(
    configured: int | None = None, *, cgroup_root: str = "/sys/fs/cgroup"
) -> int | None:
    """The memory this process may use, in bytes, or ``None`` when nothing limits it.

    Reads cgroup v2 ``memory.max``, then cgroup v1 ``memory/memory.limit_in_bytes``, and
    falls back to ``configured`` (e.g. the host's RAM, or a container's documented limit).
    """
    root = Path(cgroup_root)
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            break
        try:
            value = int(text)
        except ValueError:
            continue
        if 0 < value < _UNLIMITED:
            return value
        break
    return configured


@functools.cache
def process_start_time() -> float:
    """When this process started (unix time), from /proc; else when perfkit was imported."""
    try:
        stat = Path("/proc/self/stat").read_text()
        # Fields after the parenthesised command name; starttime is field 22 of stat(5).
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        pass
    return _STARTED
