"""The serializer RQ uses for perfkit jobs: JSON through msgspec, never pickle.

RQ stores a job's call as ``(function path, instance, args, kwargs)`` and its meta and
results with the serializer given to the queue and the worker. RQ's default is pickle,
which runs code while loading: anyone who can write to Redis could then run code in the
workers. JSON carries data only; the function is still named by its import path, which
RQ resolves with ``importlib`` as it always does.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["JobSerializer"]

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
