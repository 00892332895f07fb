"""What a sender or sink reports back, stored as the job's result."""

from __future__ import annotations

import msgspec

__all__ = ["DeliveryReport"]


class DeliveryReport(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a message was delivered, by which backend, with a short detail.

    The log backends report ``delivered=False``: logging a message is not sending it.
    """

    delivered: bool
    backend: str
    detail: str = ""
