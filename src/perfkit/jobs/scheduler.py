"""RQ's scheduler with a short lock lease, so a dead worker's lock frees in seconds.

RQ's scheduler (one process per worker started with ``with_scheduler=True``) moves due
delayed jobs and retries onto their queues. Only the holder of a queue's scheduler lock
does that, and RQ leases the lock for ``interval + 60`` s: when the worker holding it is
SIGKILLed, no other scheduler moves anything for up to a minute, so every retry of the
jobs the dead worker abandoned waits that long. :class:`Scheduler` keeps RQ's protocol
(the holder refreshes its locks every ``interval``) but cuts each lease it holds to
:data:`LOCK_TTL` right after RQ sets it, dies with the worker that started it, and stops
as soon as it is told to, not after its sleep.
"""

from __future__ import annotations

import os
import select
import signal
from typing import Any

from rq.scheduler import RQScheduler

from perfkit.jobs import _gate
from perfkit.jobs.lifeline import die_with_parent

__all__ = ["LOCK_TTL", "Scheduler"]

# Seconds a scheduler lock outlives its holder's last refresh (RQ: interval + 60). The
# holder refreshes every second, so a stall of this long hands the lock to another
# scheduler; the holder notices at its next heartbeat and stops scheduling that queue.
LOCK_TTL = 4

# Shortens a lock's lease only while the caller still owns it.
_SHORTEN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class Scheduler(RQScheduler):
    """RQ's scheduler, holding its locks for :data:`LOCK_TTL` s, dying with its worker and
    stopping at once on SIGTERM or SIGINT; between passes it wakes for parked jobs
    (:func:`perfkit.jobs._gate.release_due`)."""

    _parent_pid = 0

    def _shorten_leases(self) -> None:
        locks = sorted(self.acquired_locks)
        if not locks:
            return
        shorten = self.connection.register_script(_SHORTEN)
        with self.connection.pipeline(transaction=False) as pipe:
            for name in locks:
                shorten(keys=[self.get_locking_key(name)], args=[self.name, LOCK_TTL], client=pipe)
            pipe.execute()

    def acquire_locks(self, auto_start: bool = False) -> Any:
        """RQ's acquisition, then the short lease on every lock won."""
        won = super().acquire_locks(auto_start=auto_start)  # type: ignore[no-untyped-call]
        self._shorten_leases()
        return won

    def heartbeat(self) -> None:
        """RQ's heartbeat (which re-leases for a minute), then the short lease again."""
        super().heartbeat()  # type: ignore[no-untyped-call]
        self._shorten_leases()

    def start(self) -> Any:
        """Fork the scheduler process (RQ's), remembering who its parent is."""
        self._parent_pid = os.getpid()
        return super().start()  # type: ignore[no-untyped-call]

    def work(self) -> None:
        """In the scheduler process: die with the worker, then RQ's loop, whose pause
        between passes a stop request ends at once."""
        if self._parent_pid:
            die_with_parent(self._parent_pid)
        # RQ's loop sleeps `interval` between passes and a signal does not cut a
        # time.sleep short: a worker's warm shutdown waited up to a second for its
        # scheduler. The interpreter writes a byte here on every signal it handles, which
        # ends the select below (or the next one, if the signal came between two).
        wakeup, alarm = os.pipe()
        os.set_blocking(alarm, False)
        signal.set_wakeup_fd(alarm)
        self._install_signal_handlers()  # type: ignore[no-untyped-call]
        self.register_birth()
        while not self._stop_requested:
            if self.should_reacquire_locks:
                self.acquire_locks()
            self.heartbeat()
            self.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
            # Jobs parked on a limit go back to their queue when it has room again (a Rate
            # window moved on): the pause ends then, not a whole interval later.
            due = _gate.release_due(self.connection)
            pause = self.interval if due is None else min(self.interval, due)
            if select.select([wakeup], [], [], pause)[0]:
                os.read(wakeup, 4096)  # emptied, else every later pause would end at once
        self.stop()  # type: ignore[no-untyped-call]
