"""Values in Redis: msgspec MessagePack behind a one-byte header that says whether tags guard it.

msgspec encodes and decodes most values natively (builtins, ``Struct``, dataclasses, attrs
classes). pydantic v2 models are encoded as their JSON-mode dump and rebuilt by
``model_validate`` when decoded into a type that names them (``Book``, ``list[Book]``,
``dict[str, Book | None]``...); pydantic is never imported by perfkit: a model can only
exist if the application imported it. The hooks run only for types msgspec does not
handle itself, so ``Struct`` values cost what they did.

An untagged entry is ``b"\\x00" + payload``. A tagged entry is ``b"\\x01"``, then for each tag
``tag \\x1f generation`` separated by ``\\x1e``, then ``\\x1d`` and the payload. The header is
written by the Lua scripts in ``_scripts.py`` and checked on read by :func:`split_entry`'s caller.

A payload written with a stale window (``stale_ttl``) or early refresh is *timed*: ``0xc1`` (a
byte MessagePack never uses, so an untimed payload can never be mistaken for one), the time it
stops being fresh (unix ms, 8 bytes) and how long its loader took (µs, 4 bytes), then the
MessagePack. The key itself lives that long plus the stale window, so ``delete`` and pattern
invalidation remove the stale copy with the fresh one; see :func:`timed`.
"""

from __future__ import annotations

import struct
import sys
import time
from functools import lru_cache
from typing import Any, Final

import msgspec

from perfkit._errors import ArgumentTypeError


class _Missing:
    """The type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


# An encoded value, possibly a view into the bytes Redis returned.
Payload = bytes | memoryview
# A payload and the (tag, generation) pairs it was written with.
Entry = tuple[Payload, list[tuple[str, bytes]]]

# "Not in the cache": distinct from None, which is a value that can be cached.
MISSING: Final = _Missing()

UNTAGGED = 0
TAGGED = 1
TIMED = 0xC1
_TIMING = struct.Struct(">QI")  # fresh until (unix ms), loader time (µs)
_TIMED_HEADER = 1 + _TIMING.size
_UNTAGGED_PREFIX = b"\x00"


def _pydantic_model_base() -> Any:
    """pydantic's ``BaseModel`` if the application imported pydantic (never imported here)."""
    module = sys.modules.get("pydantic")
    return None if module is None else getattr(module, "BaseModel", None)


def _enc_hook(value: Any) -> Any:
    """What msgspec encodes for a value it has no native support for."""
    base = _pydantic_model_base()
    if base is not None and isinstance(value, base):
        # JSON mode: only types msgspec encodes natively, and model_validate reads them back.
        return value.model_dump(mode="json")
    raise NotImplementedError(f"{type(value).__name__} is not a type msgspec or pydantic encodes")


def _dec_hook(type_: type, obj: Any) -> Any:
    """Builds a value of a type msgspec does not know from what was stored."""
    if type_ is object:  # given a hook, msgspec asks it about ``object`` too: anything goes
        return obj
    base = _pydantic_model_base()
    if base is not None and isinstance(type_, type) and issubclass(type_, base):
        model: Any = type_
        return model.model_validate(obj)
    raise NotImplementedError(f"cannot decode into {type_!r}")


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
# Untyped values (no return annotation, ``get``): the decoder every such hit uses.
plain_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()


def encode(value: object, *, key: str) -> bytes:
    """MessagePack of ``value``; ``TypeError`` naming the type (and key) when it can't be."""
    try:
        return _encoder.encode(value)
    except (TypeError, OverflowError, NotImplementedError) as exc:
        raise ArgumentTypeError(
            f"cannot cache a value of type {type(value).__name__} for key {key!r}: {exc} "
            "(cached_query(serializer=...) caches any type through your own dumps/loads)"
        ) from exc


def entry_prefix(pairs: list[tuple[str, bytes]]) -> bytes:
    """The header of an entry guarded by these (tag, generation) pairs (none: untagged).
    The Lua script STORE_TAGGED writes the same layout."""
    if not pairs:
        return _UNTAGGED_PREFIX
    return b"\x01" + b"\x1e".join(tag.encode() + b"\x1f" + gen for tag, gen in pairs) + b"\x1d"


def header_template(tags: tuple[str, ...]) -> bytes:
    """:func:`entry_prefix` of ``tags`` with ``%b`` for each generation: ``template % gens``
    is the header of an entry written under exactly those tags at those generations."""
    return entry_prefix([(tag.replace("%", "%%"), b"%b") for tag in tags])


def split_entry(raw: bytes) -> Entry | None:
    """``(payload, tag generations)`` of a stored entry (no tags for an untagged one), or
    None when the entry is not in perfkit's layout (bytes another client wrote: a miss)."""
    if not raw:
        return None
    if raw[0] == UNTAGGED:
        return memoryview(raw)[1:], []
    stop = raw.find(b"\x1d", 1)
    if raw[0] != TAGGED or stop < 0:
        return None
    pairs: list[tuple[str, bytes]] = []
    for pair in raw[1:stop].split(b"\x1e"):
        tag, _, gen = pair.partition(b"\x1f")
        try:
            pairs.append((tag.decode(), gen))
        except UnicodeDecodeError:
            return None
    return memoryview(raw)[stop + 1 :], pairs


@lru_cache(maxsize=256)
def decoder_for(type_: Any) -> msgspec.msgpack.Decoder[Any]:
    """A decoder that builds ``type_`` (one per type, reused)."""
    return msgspec.msgpack.Decoder(type_, dec_hook=_dec_hook)


def timed(payload: bytes, fresh_ms: int, load_seconds: float) -> bytes:
    """``payload`` with its timing: fresh for ``fresh_ms`` from now; its loader took
    ``load_seconds`` (what early refresh weighs)."""
    fresh_until = time.time_ns() // 1_000_000 + fresh_ms
    took = min(round(load_seconds * 1_000_000), 2**32 - 1)
    return bytes([TIMED]) + _TIMING.pack(fresh_until, took) + payload


def split_timed(payload: Payload) -> tuple[float, float, Payload] | None:
    """``(fresh until, loader seconds, inner payload)`` of a timed payload (fresh until in
    unix seconds), or None for an untimed one."""
    if len(payload) < _TIMED_HEADER or payload[0] != TIMED:
        return None  # (a shorter one is not perfkit's: a miss when decoded)
    fresh_until, took = _TIMING.unpack_from(payload, 1)
    return fresh_until / 1000, took / 1_000_000, memoryview(payload)[_TIMED_HEADER:]


def fresh_payload(payload: Payload) -> Payload | None:
    """What to decode from ``payload`` for a reader that serves no stale value: the inner
    payload of a timed one while it is fresh (None once it expired), else ``payload``."""
    timing = split_timed(payload)
    if timing is None:
        return payload
    return timing[2] if time.time() < timing[0] else None


def fresh_for(payload: Payload) -> float | None:
    """Seconds a timed payload stays fresh (None: untimed, no limit of its own)."""
    timing = split_timed(payload)
    return None if timing is None else timing[0] - time.time()
