"""Child processes of a worker (work horses, the scheduler) die with the worker.

RQ puts a forked work horse in a process group of its own, so a SIGKILL of the worker
(OOM killer, ``kill -9``) leaves the horse running: it finishes its job while the next
worker's maintenance retries the same job as abandoned, and the job runs twice. The
scheduler process, orphaned the same way, keeps the queues' scheduler lock forever.

:func:`die_with_parent` closes that hole in the child right after the fork: on Linux
the kernel sends it SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``);
elsewhere a daemon thread polls the parent pid every :data:`POLL_INTERVAL` and kills
the process when it changes. Either way the child is gone well before the job's
started-registry entry (two heartbeat intervals, at least 2 s) can expire, so a job is
never retried while its horse still runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from typing import Any

__all__ = ["POLL_INTERVAL", "die_with_parent"]

# Fallback only: how often a child checks that its parent is still there.
POLL_INTERVAL = 0.2
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up at import, in the worker, never after a fork: dlopen/dlsym take the dynamic
# loader's lock, which another thread of the worker (the pubsub listener resolving a
# host name) may hold at the fork, and a child of a threaded process would wait on it
# forever.
_PRCTL = _load_prctl()


def _set_parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where unsupported."""
    return _PRCTL is not None and int(_PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0


def _watch(parent_pid: int) -> None:
    event = threading.Event()
    while not event.wait(POLL_INTERVAL):
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent(parent_pid: int, *, use_prctl: bool = True) -> str:
    """Make the calling (just forked) process die when ``parent_pid`` dies.

    Returns the mechanism used: ``"prctl"`` or ``"watch"`` (``use_prctl=False`` forces
    the portable fallback, for tests). Exits at once if the parent is already gone.
    """
    mechanism = "prctl" if use_prctl and _set_parent_death_signal() else "watch"
    if mechanism == "watch":
        threading.Thread(
            target=_watch, args=(parent_pid,), name="perfkit-lifeline", daemon=True
        ).start()
    # The parent may have died between the fork and the prctl (which then never fires).
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)
    return mechanism
