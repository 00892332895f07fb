"""How PerfkitCache stores Django's values (``OPTIONS["SERIALIZER"]``), with no I/O.

- ``"pickle"`` (the default), :class:`SignedPickle`: any picklable value, returned as it was
  stored (Django's contract), behind an HMAC-SHA256 keyed from ``SECRET_KEY`` and bound to
  the entry's Redis key. An entry whose signature does not verify (written by anything but
  a backend with this secret, for this key) is a miss, counted, and never unpickled.
- ``"msgspec"``, :class:`StrictMsgspec`: what perfkit's MessagePack codec returns unchanged,
  and nothing else: a value that would come back as another type (a tuple as a list, a
  Decimal as a string...) is refused with a ``TypeError`` when it is cached.

Integers of at most 53 bits are stored as MessagePack integers in both, so that ``incr``
is one atomic script in Redis (:data:`INCR`).
"""

from __future__ import annotations

import datetime
import hmac
import pickle
import threading
from typing import Any, Final

import msgspec
import structlog
from django.conf import settings
from django.utils.crypto import salted_hmac

from perfkit._errors import ArgumentTypeError
from perfkit.cache._codec import MISSING

log = structlog.get_logger("perfkit.contrib.django")

SERIALIZERS = ("pickle", "msgspec")
# Lua's numbers are doubles: integers are exact up to 2**53, so only those are incremented
# in Redis; a larger one is read, added and written back (pickled).
EXACT: Final = 2**53
# An entry holding a MessagePack integer (untagged, see perfkit.cache._codec): incremented in
# place, its TTL kept. {0}: no entry; {1}: not such an entry (or the sum is not exact).
INCR = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {0} end
if string.byte(raw, 1) ~= 0 then return {1} end
local ok, value = pcall(cmsgpack.unpack, string.sub(raw, 2))
if not ok or type(value) ~= 'number' or math.floor(value) ~= value then return {1} end
value = value + tonumber(ARGV[1])
if math.abs(value) >= 9007199254740992 then return {1} end
redis.call('SET', KEYS[1], '\\0' .. cmsgpack.pack(value), 'KEEPTTL')
return {2, value}
"""

# The shortest expiry perfkit can store (it counts in milliseconds; 0 means "never").
_MIN_TTL = 0.001


def perfkit_ttl(seconds: float | None) -> float:
    """perfkit's ttl for Django's backend timeout ``seconds`` (perfkit's 0 is Django's None:
    no expiry)."""
    return 0 if seconds is None else max(seconds, _MIN_TTL)


def milliseconds(seconds: float) -> int:
    """Redis's PX for ``seconds`` (at least 1)."""
    return max(round(seconds * 1000), 1)


_SALT = "perfkit.contrib.django.cache.PerfkitCache"
_MAC_SIZE = 32  # HMAC-SHA256


class BackendStats(msgspec.Struct, frozen=True, kw_only=True):
    """PerfkitCache's own counters (the service's are ``cache.service.stats()``)."""

    bad_signatures: int
    """Counter: entries read whose signature did not verify (served as misses)."""


def _signing_key(secret: str | bytes) -> bytes:
    # A key of its own for the cache, derived from the secret as Django derives its others.
    key: bytes = salted_hmac(_SALT, "signing key", secret=secret, algorithm="sha256").digest()
    return key


class SignedPickle:
    """``SERIALIZER: "pickle"``: pickles signed with a key derived from ``SECRET_KEY``
    (entries signed with a ``SECRET_KEY_FALLBACKS`` secret are read too)."""

    name = "pickle"

    def __init__(self) -> None:
        # Django refuses an empty SECRET_KEY here (ImproperlyConfigured).
        secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        self._keys = [_signing_key(secret) for secret in secrets]
        self._lock = threading.Lock()
        self._bad_signatures = 0

    @staticmethod
    def _mac(signing_key: bytes, full: str, data: bytes | memoryview) -> bytes:
        # Bound to the Redis key, so that a signed entry copied to another key does not verify.
        name = full.encode()
        return hmac.digest(signing_key, b"".join((b"%d:" % len(name), name, data)), "sha256")

    def dump(self, value: Any, full: str) -> Any:
        """What to store for ``value`` at the Redis key ``full``."""
        if type(value) is int and -EXACT < value < EXACT:
            return value
        data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        return self._mac(self._keys[0], full, data) + data

    def load(self, stored: Any, full: str) -> Any:
        """The value ``stored`` at ``full``, or MISSING when its signature does not verify."""
        if type(stored) is int:
            return stored
        if type(stored) is bytes and len(stored) > _MAC_SIZE:
            data = memoryview(stored)[_MAC_SIZE:]
            for signing_key in self._keys:
                if hmac.compare_digest(stored[:_MAC_SIZE], self._mac(signing_key, full, data)):
                    return pickle.loads(data)  # noqa: S301 (signed by this SECRET_KEY)
        self._reject(full)
        return MISSING

    def _reject(self, full: str) -> None:
        with self._lock:
            self._bad_signatures += 1
            first = self._bad_signatures == 1
        if first:
            # Once per process: a stream of forged entries must not flood the log. Neither
            # the key nor the value: they are the writer's.
            log.warning(
                "django_cache.bad_signature",
                namespace=full.partition(":")[0],
                detail="an entry not signed by this SECRET_KEY was read: served as a miss, "
                "never unpickled; counted in PerfkitCache.stats().bad_signatures",
            )

    def stats(self) -> BackendStats:
        return BackendStats(bad_signatures=self._bad_signatures)

    def reset_stats(self) -> None:
        with self._lock:
            self._bad_signatures = 0


# What perfkit's codec decodes (untyped) into the type it encoded: everything else comes
# back as another type (tuple, set -> list; Decimal, UUID, date, naive datetime -> str; a
# Struct or dataclass -> dict; a str subclass such as SafeString -> str ...).
_SCALARS = frozenset({str, float, bool, type(None), bytes})
_INT_RANGE = range(-(2**63), 2**64)  # MessagePack's integers
_RETURNED = "str, int (64-bit), float, bool, None, bytes, list, dict and UTC datetimes"


def _changed(value: Any) -> tuple[list[str], str] | None:
    """None if perfkit's codec returns ``value`` unchanged; else where it would not (the
    path inside ``value``) and what is there."""
    kind = type(value)
    if kind in _SCALARS:
        return None
    if kind is int:
        return None if value in _INT_RANGE else ([], "an int beyond 64 bits")
    if kind is list:
        for index, item in enumerate(value):
            found = _changed(item)
            if found is not None:
                found[0].insert(0, f"[{index}]")
                return found
        return None
    if kind is dict:
        for key, item in value.items():
            if type(key) is not int and type(key) not in _SCALARS:
                return [], f"a dict key of type {type(key).__name__}"
            found = _changed(key) or _changed(item)
            if found is not None:
                found[0].insert(0, f"[{key!r}]")
                return found
        return None
    if kind is datetime.datetime and value.tzinfo is datetime.UTC:
        return None
    if kind is datetime.datetime:
        # Naive: back as a string; another zone: back in UTC (equal, another hour).
        return [], f"a datetime with tzinfo={value.tzinfo!r}"
    return [], f"a {kind.__module__}.{kind.__qualname__}"


class StrictMsgspec:
    """``SERIALIZER: "msgspec"``: values perfkit's MessagePack codec returns unchanged."""

    name = "msgspec"

    def dump(self, value: Any, full: str) -> Any:
        """``value``, checked: ``TypeError`` if it would not come back as it is."""
        found = _changed(value)
        if found is not None:
            path, what = found
            where = "".join(path)
            raise ArgumentTypeError(
                f"PerfkitCache OPTIONS['SERIALIZER']='msgspec' cannot cache {what}"
                f"{' at value' + where if where else ''} for key {full!r}: it would come back "
                f"as another type (only {_RETURNED} come back unchanged). Convert it, or use "
                "the default SERIALIZER, 'pickle'"
            )
        return value

    def load(self, stored: Any, full: str) -> Any:
        """The value as stored (MessagePack decodes into plain data: nothing to check)."""
        return stored

    def stats(self) -> BackendStats:
        return BackendStats(bad_signatures=0)

    def reset_stats(self) -> None:
        """Nothing to reset: nothing is signed."""


Values = SignedPickle | StrictMsgspec


def values_for(serializer: str) -> Values:
    """The values of ``OPTIONS["SERIALIZER"]`` (checked by the caller)."""
    return SignedPickle() if serializer == "pickle" else StrictMsgspec()
