"""The serializer RQ uses for perfkit jobs: JSON through msgspec, never pickle.

RQ stores a job's call as ``(function path, instance, args, kwargs)`` and its meta and
results with the serializer given to the queue and the worker. RQ's default is pickle,
which runs code while loading: anyone who can write to Redis could then run code in the
workers. JSON carries data only; the function is still named by its import path, which
RQ resolves with ``importlib`` as it always does.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from perfkit._errors import PayloadError

__all__ = ["JobSerializer", "check_finite"]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class JobSerializer:
    """msgspec JSON (de)serializer for RQ: pass it as ``serializer=`` to queues and workers.

    Encodes what JSON can carry plus msgspec's extras (Structs, datetimes, UUIDs,
    decimals, enums); values it cannot encode raise ``TypeError``.
    """

    @staticmethod
    def dumps(obj: Any, /) -> bytes:
        """Encode ``obj`` as JSON bytes."""
        return _encoder.encode(obj)

    @staticmethod
    def loads(data: bytes, /) -> Any:
        """Decode JSON bytes into builtins (dict, list, str, numbers, None)."""
        return _decoder.decode(data)


def check_finite(value: Any, what: str, path: str = "$") -> None:
    """Raise :class:`PayloadError` if ``value`` holds a NaN or an infinity.

    JSON has neither: msgspec writes them as ``null``, which the worker's validation
    then refuses (a float field) or silently reads as None. ``value`` is builtins, as
    ``msgspec.to_builtins`` returns them; the message names ``what`` and the path.
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadError(
                f"{what} is not valid: {value} is not allowed (JSON has no "
                f"NaN or infinity) - at `{path}`"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, what, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_finite(item, what, f"{path}[{index}]")
