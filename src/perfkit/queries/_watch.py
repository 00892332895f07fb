"""Which pooled connections may be dead, decided without a round trip per checkout.

A pool hands out a connection without asking the server whether it is still there: that
round trip would cost as much as the statement. Instead :class:`ConnectionWatch` keeps an
*epoch* and each connection the epoch it was last known good in, the time it was last
handed out, and a ``poll`` object on its socket. At checkout a connection is *suspect*
when

- it was handed out more than :data:`POLL_AFTER_IDLE` ago (so it has sat idle, or been
  held, at least that long) and its socket is readable: the server closed it (a restart,
  a crash or a terminated backend sends its goodbye and FIN) or has something unasked-for
  to say. A connection handed out moments ago is not polled: no server restarts that
  fast, and the zero-timeout ``poll()`` is a system call that a busy pool would otherwise
  make on every checkout. (The time is stamped at checkout, where the clock is read
  anyway, so that giving a connection back costs nothing.)
- or its epoch is older than the pool's: since it was last known good, some other
  connection of the pool turned out dead (the epoch moves on then), so all of them may be.

A suspect connection is verified with one round trip (or replaced) before it is handed
out. In the steady state checkout costs two comparisons, a clock read and a store, tested
inline by the pools' ``getconn``: only a connection of an older epoch, or one handed out
long enough ago, gets the call to :meth:`ConnectionWatch.suspect` (and perhaps its
``poll()``). A statement refused because the server became a read-only standby moves the
*replace mark* to the current epoch: every connection made before is closed and replaced
at its next checkout (a multi-host conninfo with ``target_session_attrs=read-write`` then
finds the new primary).

A statement whose connection dies while it runs cannot be caught that way. The pools'
``fetch()`` runs it once more on a fresh connection when that is safe: a read-only
statement (:func:`read_only`) outside an explicit transaction, or one the caller marks
``retry_safe``.

No I/O here: the sync and async pools share it.
"""

from __future__ import annotations

import re
import select
import threading
from time import monotonic
from typing import Any

from psycopg import errors

__all__ = ["POLL_AFTER_IDLE", "ConnectionWatch", "read_only"]

# Seconds a connection must have sat idle before a checkout polls its socket: far shorter
# than any PostgreSQL restart, far longer than a busy pool keeps a connection idle.
POLL_AFTER_IDLE = 0.05

# What a statement can raise when the server has become a read-only standby.
_READ_ONLY = (errors.ReadOnlySqlTransaction,)

# A statement that only reads: it starts with one of these ...
_READS = re.compile(r"\s*(?:\(\s*)*(?:SELECT|VALUES|SHOW|TABLE|WITH)\b", re.IGNORECASE)
# ... and has none of these anywhere (data-modifying CTEs, SELECT INTO, row locks, ...).
_WRITES = re.compile(
    r"\b(?:INSERT|UPDATE|DELETE|MERGE|INTO|FOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY))\b"
    r"|\bnextval\s*\(|\bsetval\s*\(|\bpg_advisory",
    re.IGNORECASE,
)


def read_only(text: str) -> bool:
    """True when SQL ``text`` reads and writes nothing, judged by its words (a function
    called from a SELECT may still write: pass ``retry_safe=False`` for one that does)."""
    return bool(_READS.match(text)) and not _WRITES.search(text)


class ConnectionWatch:
    """The epoch, the replace mark, and the counters of connections verified or replaced."""

    __slots__ = (
        "_lock",
        "epoch",
        "rejected",
        "replace_before",
        "replaced",
        "retried",
        "timeouts",
        "verified",
    )

    def __init__(self) -> None:
        self.epoch = 0
        self.replace_before = 0
        self.verified = self.replaced = self.timeouts = self.rejected = self.retried = 0
        self._lock = threading.Lock()  # the rare paths only: failures, verifications

    def stamp(self, conn: Any) -> None:
        """Mark a new connection as good now, with a poll object on its socket."""
        poller = select.poll()
        poller.register(conn.pgconn.socket, select.POLLIN)
        conn._pk_poll = poller
        conn._pk_epoch = self.epoch
        conn._pk_taken = monotonic()

    def suspect(self, conn: Any, now: float) -> bool:
        """True when ``conn`` must be verified before it is handed out at time ``now``
        (``monotonic()``)."""
        return conn._pk_epoch != self.epoch or (
            now - conn._pk_taken > POLL_AFTER_IDLE and bool(conn._pk_poll.poll(0))
        )

    def must_replace(self, conn: Any) -> bool:
        """True when ``conn`` dates from before a read-only refusal: close it unverified."""
        return bool(conn._pk_epoch < self.replace_before)

    def verified_good(self, conn: Any, epoch: int) -> None:
        """``conn`` answered a check that started in ``epoch``."""
        conn._pk_epoch = epoch
        with self._lock:
            self.verified += 1

    def found_dead(self, conn: Any, *, replaced: bool = False) -> None:
        """``conn`` turned out dead: if it was trusted, every older connection is suspect."""
        with self._lock:
            if getattr(conn, "_pk_epoch", None) == self.epoch:
                self.epoch += 1
            if replaced:
                self.replaced += 1

    def statement_failed(self, conn: Any, exc: BaseException) -> None:
        """A statement on ``conn`` raised ``exc``: note a dead connection or a standby."""
        if isinstance(exc, _READ_ONLY):
            with self._lock:
                self.epoch += 1
                self.replace_before = self.epoch
        elif conn.broken:
            self.found_dead(conn)

    def count_timeout(self) -> None:
        """A request gave up waiting for a connection (``PoolTimeout``)."""
        with self._lock:
            self.timeouts += 1

    def count_rejected(self) -> None:
        """A request was refused at once: too many were waiting (``TooManyRequests``)."""
        with self._lock:
            self.rejected += 1

    def may_retry(self, conn: Any, text: str, retry_safe: bool | None) -> bool:
        """Whether a statement that just failed, alone on ``conn`` (so outside any explicit
        transaction), may run again on another connection: the connection died (not the
        statement), and the statement is retry-safe (``retry_safe``, else
        :func:`read_only`)."""
        if not conn.broken:
            return False
        safe = read_only(text) if retry_safe is None else retry_safe
        if safe:
            with self._lock:
                self.retried += 1
        return safe

    def reset(self) -> None:
        """Zero the counters (the epoch and the replace mark stay)."""
        with self._lock:
            self.verified = self.replaced = self.timeouts = self.rejected = self.retried = 0
