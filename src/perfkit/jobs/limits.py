"""Limits across all workers: :class:`Concurrency` and :class:`Rate`, per key value.

::

    @processor("reports.build", queue="reports", limits=[Concurrency(2, key="{tenant_id}")])
    def build(payload: ReportPayload) -> None: ...

    service.enqueue("reports.build", payload, limits=[Rate(10, per=60, key="{tenant_id}")])

A limit's ``key`` is a template of payload fields (``"{tenant_id}"``, ``"{region}:{kind}"``);
it is filled in at enqueue (a field the payload does not have raises there, before anything
is written) and scoped to the processor (or plain function), so two processors never share a
bucket. Without ``key`` the limit is on the processor as a whole.

This module holds what needs no I/O: the two limit kinds, filling in their keys (the
*buckets* a job carries in ``job.meta``) and the Lua scripts with their arguments. The
Redis calls are in ``_gate_async.py`` and its generated sync twin ``_gate.py``; the design
and its invariants are in docs/jobs.md ("Limits across workers").

Redis keys of a bucket ``B`` (``perfkit:limits:<kind>:<scope>[:<value>]``):

- ``B:run``: ZSET of job id -> expiry (ms). A Concurrency slot is a lease that the running
  job's heartbeat extends and its end deletes; a Rate entry is a start that leaves the
  window ``per`` seconds after it (the job id while it runs, renamed when it ends).
- ``B:wait``: LIST of the ids of jobs parked on ``B``, oldest first.
- ``B``: HASH ``n``, ``per`` (ms, 0 for Concurrency), for the wake-up pass.
- ``perfkit:limits:wakes``: ZSET of bucket -> when it may have room again (its earliest expiry).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from perfkit._errors import ConfigError, JobArgumentError

__all__ = [
    "META_KEY",
    "PREFIX",
    "RESERVATION_TTL",
    "WAKES_KEY",
    "Bucket",
    "Concurrency",
    "Limit",
    "Rate",
    "acquire_call",
    "admit_call",
    "buckets_of",
    "fill_buckets",
    "refresh_call",
    "release_call",
    "release_due_call",
]

PREFIX = "perfkit:limits:"
WAKES_KEY = PREFIX + "wakes"
# Where a job carries its buckets: [[base key, n, per ms], ...] (per 0: Concurrency).
META_KEY = "perfkit.limits"
# How long a slot handed to a parked job (put back at the end of its queue) waits for a
# worker to take the job before another job may have it.
RESERVATION_TTL = 60.0

_FORMATTER = string.Formatter()


def _template_fields(kind: str, key: str | None) -> tuple[str, ...]:
    if key is None:
        return ()
    try:
        parsed = list(_FORMATTER.parse(key))
    except ValueError as exc:
        raise ConfigError(f"{kind} key template {key!r} is not valid: {exc}") from exc
    fields = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        # Plain field names only: "{a.b}" or "{a[0]}" would reach into the payload's objects.
        if not name.isidentifier() or spec or conversion:
            raise ConfigError(
                f"{kind} key template {key!r}: use plain payload field names such as "
                f"'{{tenant_id}}', got {{{name}}}"
            )
        fields.append(name)
    return tuple(fields)


class Concurrency(msgspec.Struct, frozen=True):
    """At most ``n`` jobs running at once per value of ``key`` (a template of payload
    fields; None: one bucket for the processor)."""

    n: int
    key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ConfigError(f"Concurrency n must be an integer >= 1, got {self.n!r}")
        _template_fields("Concurrency", self.key)


class Rate(msgspec.Struct, frozen=True):
    """At most ``n`` starts per ``per`` seconds (a sliding window) per value of ``key``."""

    n: int
    per: float
    key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ConfigError(f"Rate n must be an integer >= 1, got {self.n!r}")
        if not isinstance(self.per, (int, float)) or not 0 < self.per < 10**9:
            raise ConfigError(f"Rate per must be a number of seconds > 0, got {self.per!r}")
        _template_fields("Rate", self.key)


Limit = Concurrency | Rate


class Bucket(msgspec.Struct, frozen=True, array_like=True):
    """One filled-in limit of one job: its Redis key, ``n`` and window (ms; 0: Concurrency)."""

    base: str
    n: int
    per_ms: int


def check_limits(owner: str, limits: Iterable[Any]) -> tuple[Limit, ...]:
    """``limits`` as a tuple, each checked to be a :class:`Concurrency` or :class:`Rate`."""
    checked = tuple(limits)
    for limit in checked:
        if not isinstance(limit, (Concurrency, Rate)):
            raise ConfigError(
                f"{owner}: limits= takes Concurrency(...) and Rate(...), got {limit!r}"
            )
    return checked


def _key_value(limit: Limit, owner: str, fields: Mapping[str, Any] | None) -> str:
    kind = type(limit).__name__
    names = _template_fields(kind, limit.key)
    if limit.key is None:
        return ""
    values: dict[str, str] = {}
    for name in names:
        if fields is None or name not in fields:
            have = ", ".join(sorted(fields)) if fields else "none"
            raise JobArgumentError(
                f"{owner}: the {kind} key {limit.key!r} names the field {name!r}, which the "
                f"payload does not have (fields: {have})"
            )
        value = fields[name]
        if not isinstance(value, (str, int, float)):
            raise JobArgumentError(
                f"{owner}: the {kind} key {limit.key!r} needs a string or number in "
                f"{name!r}, got {type(value).__name__}"
            )
        values[name] = str(value)
    return ":" + limit.key.format_map(values)


def fill_buckets(owner: str, limits: Sequence[Limit], payload: Any) -> list[Bucket]:
    """The buckets of a job of ``owner`` (a processor name or function path) with these
    ``limits`` and ``payload`` (its builtins: a mapping of fields, or anything).

    Raises :class:`JobArgumentError` when a key template names a field the payload lacks.
    """
    fields = payload if isinstance(payload, Mapping) else None
    buckets = []
    for limit in limits:
        value = _key_value(limit, owner, fields)
        if isinstance(limit, Concurrency):
            buckets.append(Bucket(f"{PREFIX}concurrency:{owner}{value}", limit.n, 0))
        else:
            per_ms = max(1, round(limit.per * 1000))
            buckets.append(Bucket(f"{PREFIX}rate:{owner}{value}", limit.n, per_ms))
    return buckets


def buckets_of(meta: Mapping[str, Any] | None) -> list[Bucket]:
    """The buckets a job carries in its meta; none for a job without limits.

    A malformed entry (a forged job) names no bucket: it can only limit itself, and only
    under perfkit's own keys."""
    raw = (meta or {}).get(META_KEY)
    if not raw:
        return []
    try:
        buckets = msgspec.convert(raw, list[Bucket])
    except msgspec.ValidationError:
        return []
    return [b for b in buckets if b.base.startswith(PREFIX) and b.n >= 1 and b.per_ms >= 0]


# -- Lua -----------------------------------------------------------------------------------
# Shared by the scripts. `promote` hands the free room of bucket `base` to its parked jobs,
# oldest first: each gets a reservation in `base:run` and goes back to the *end* of its
# queue, where it takes its turn with the other keys' jobs (at the front, a key with a
# backlog would go before every other key's queued jobs each time one of its jobs ended),
# unless it is gone, no longer queued or marked canceled: then it is dropped. If jobs still
# wait, the bucket's wake is set to its earliest expiry.
_LUA_COMMON = """
local wakes = KEYS[1]
local queue_prefix, job_prefix = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])

local function room(base, n)
    redis.call('ZREMRANGEBYSCORE', base .. ':run', '-inf', now)
    return n - redis.call('ZCARD', base .. ':run')
end

local function wake_at_earliest(base)
    local first = redis.call('ZRANGE', base .. ':run', 0, 0, 'WITHSCORES')
    if #first > 0 then
        redis.call('ZADD', wakes, 'LT', first[2], base)
    end
end

-- Take a slot for job in the bucket at base: a Rate start (per > 0) leaves the window
-- per ms from now, a Concurrency slot (per 0) is held for lease ms (its heartbeat extends it).
local function take_slot(base, job, per, lease)
    local expiry = now + lease
    if per > 0 then
        expiry = now + per
    end
    redis.call('ZADD', base .. ':run', expiry, job)
end

-- Park job on the full bucket at base (n and per kept for the wake-up pass).
local function park(base, job, n, per)
    redis.call('HSET', base, 'n', n, 'per', per)
    redis.call('RPUSH', base .. ':wait', job)
    wake_at_earliest(base)
end

local function promote(base, n, per, reserve)
    local free = room(base, n)
    while free > 0 do
        local job = redis.call('LPOP', base .. ':wait')
        if not job then
            break
        end
        -- perfkit_cancel: the mark JobService.cancel sets before it cancels the job.
        local fields = redis.call('HMGET', job_prefix .. job, 'origin', 'status', 'perfkit_cancel')
        if fields[1] and fields[2] == 'queued' and not fields[3] then
            take_slot(base, job, per, reserve)
            redis.call('RPUSH', queue_prefix .. fields[1], job)
            free = free - 1
        end
    end
    if redis.call('LLEN', base .. ':wait') > 0 then
        wake_at_earliest(base)
    end
end
"""

# KEYS: wakes, bucket bases. ARGV: queue prefix, job prefix, now ms, reservation ms, job id,
# lease ms, then (n, per ms) per bucket. Returns 1 (run it) or 0 (parked on a bucket).
# A job holds a bucket when it has a reservation there (handed to it when it was put back in
# its queue), or when the bucket has room and nobody waits (parked jobs are not overtaken).
_ACQUIRE = (
    _LUA_COMMON
    + """
local reserve, job, lease = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local blocked = nil
for i = 2, #KEYS do
    local base = KEYS[i]
    local n, per = tonumber(ARGV[5 + 2 * (i - 1)]), tonumber(ARGV[6 + 2 * (i - 1)])
    local free = room(base, n)
    if not redis.call('ZSCORE', base .. ':run', job) then
        if free > 0 and redis.call('LLEN', base .. ':wait') > 0 then
            promote(base, n, per, reserve)
            free = room(base, n)
        end
        if free <= 0 then
            blocked = i
            break
        end
    end
end
if blocked then
    -- Park on the first full bucket; give back what was reserved for this job elsewhere.
    for i = 2, #KEYS do
        local base = KEYS[i]
        if i ~= blocked and redis.call('ZREM', base .. ':run', job) == 1 then
            promote(base, tonumber(ARGV[5 + 2 * (i - 1)]), tonumber(ARGV[6 + 2 * (i - 1)]), reserve)
        end
    end
    park(KEYS[blocked], job, ARGV[5 + 2 * (blocked - 1)], ARGV[6 + 2 * (blocked - 1)])
    return 0
end
for i = 2, #KEYS do
    take_slot(KEYS[i], job, tonumber(ARGV[6 + 2 * (i - 1)]), lease)
end
return 1
"""
)

# KEYS: wakes, bucket bases. ARGV: queue prefix, job prefix, now ms, reservation ms, job id,
# queue key, then (n, per ms) per bucket. Run right after the job was pushed on its queue (in
# the same transaction): if every bucket has room and nobody waits there, the job gets a
# reservation in each and stays; else it is taken off the queue's tail and parked. So a
# queue holds at most n jobs of a bucket, whatever is parked behind them: the keys' jobs
# take turns in the queue (fairness), however many one key has.
_ADMIT = (
    _LUA_COMMON
    + """
local reserve, job, queue = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local blocked = nil
for i = 2, #KEYS do
    local base = KEYS[i]
    local n = tonumber(ARGV[5 + 2 * (i - 1)])
    if room(base, n) <= 0 or redis.call('LLEN', base .. ':wait') > 0 then
        blocked = i
        break
    end
end
if not blocked then
    for i = 2, #KEYS do
        take_slot(KEYS[i], job, tonumber(ARGV[6 + 2 * (i - 1)]), reserve)
    end
    return 1
end
-- Taken by a worker already (unique enqueue runs outside this transaction): it is checked
-- there.
if redis.call('LREM', queue, -1, job) == 0 then
    return 1
end
park(KEYS[blocked], job, ARGV[5 + 2 * (blocked - 1)], ARGV[6 + 2 * (blocked - 1)])
return 0
"""
)

# KEYS: wakes, bucket bases. ARGV: queue prefix, job prefix, now ms, reservation ms, job id,
# then (n, per ms) per bucket. A Concurrency slot is freed and handed on; a Rate start stays
# in the window under another name (so that a retry of the job counts anew).
_RELEASE = (
    _LUA_COMMON
    + """
local reserve, job = tonumber(ARGV[4]), ARGV[5]
for i = 2, #KEYS do
    local base = KEYS[i]
    local n, per = tonumber(ARGV[4 + 2 * (i - 1)]), tonumber(ARGV[5 + 2 * (i - 1)])
    if per == 0 then
        if redis.call('ZREM', base .. ':run', job) == 1 then
            promote(base, n, per, reserve)
        end
    else
        local started = redis.call('ZSCORE', base .. ':run', job)
        if started then
            redis.call('ZREM', base .. ':run', job)
            redis.call('ZADD', base .. ':run', started, job .. '@' .. ARGV[3])
        end
    end
end
return 1
"""
)

# KEYS: wakes. ARGV: queue prefix, job prefix, now ms, reservation ms, batch size.
# Promotes the parked jobs of every bucket whose wake is due (a Rate window opened, a dead
# worker's lease expired); returns the next wake (ms) or false.
_RELEASE_DUE = (
    _LUA_COMMON
    + """
local reserve = tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', wakes, '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, base in ipairs(due) do
    redis.call('ZREM', wakes, base)
    local config = redis.call('HMGET', base, 'n', 'per')
    if config[1] then
        promote(base, tonumber(config[1]), tonumber(config[2]), reserve)
    end
end
local first = redis.call('ZRANGE', wakes, 0, 0, 'WITHSCORES')
if #first > 0 then
    return first[2]
end
return false
"""
)

# KEYS: bucket bases (Concurrency only). ARGV: job id, lease expiry ms. Extends the job's
# slots; XX: a slot already freed (the job ended) is not taken back.
_REFRESH = """
for i = 1, #KEYS do
    redis.call('ZADD', KEYS[i] .. ':run', 'XX', ARGV[2], ARGV[1])
end
return 1
"""

Call = tuple[str, list[str], list[Any]]


def _common_args(now_ms: int) -> list[Any]:
    # The prefixes RQ builds job and queue keys with (rq.job.Job, rq.queue.Queue).
    return ["rq:queue:", "rq:job:", now_ms, round(RESERVATION_TTL * 1000)]


def _per_bucket(buckets: Sequence[Bucket]) -> list[Any]:
    return [value for bucket in buckets for value in (bucket.n, bucket.per_ms)]


def acquire_call(job_id: str, buckets: Sequence[Bucket], now_ms: int, lease: float) -> Call:
    """The script, keys and arguments that take ``buckets`` for a job or park it."""
    args = [*_common_args(now_ms), job_id, round(lease * 1000), *_per_bucket(buckets)]
    return _ACQUIRE, [WAKES_KEY, *(b.base for b in buckets)], args


def admit_call(job_id: str, queue_key: str, buckets: Sequence[Bucket], now_ms: int) -> Call:
    """The script, keys and arguments that let a just-enqueued job stay in its queue with
    a reservation, or park it."""
    args = [*_common_args(now_ms), job_id, queue_key, *_per_bucket(buckets)]
    return _ADMIT, [WAKES_KEY, *(b.base for b in buckets)], args


def release_call(job_id: str, buckets: Sequence[Bucket], now_ms: int) -> Call:
    """The script, keys and arguments that free a job's slots and hand them on."""
    args = [*_common_args(now_ms), job_id, *_per_bucket(buckets)]
    return _RELEASE, [WAKES_KEY, *(b.base for b in buckets)], args


def refresh_call(job_id: str, buckets: Sequence[Bucket], now_ms: int, lease: float) -> Call | None:
    """The script, keys and arguments that extend a running job's Concurrency leases."""
    slots = [b.base for b in buckets if b.per_ms == 0]
    if not slots:
        return None
    return _REFRESH, slots, [job_id, now_ms + round(lease * 1000)]


def release_due_call(now_ms: int, batch: int = 100) -> Call:
    """The script, keys and arguments of the wake-up pass."""
    return _RELEASE_DUE, [WAKES_KEY], [*_common_args(now_ms), batch]
