"""The built-in ``notifications.send`` processor and its pluggable sinks."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

import msgspec
import redis
import structlog

from perfkit import _defaults
from perfkit.jobs.builtins.delivery import DeliveryReport
from perfkit.jobs.processor import processor

__all__ = [
    "LogNotificationSink",
    "NotificationPayload",
    "NotificationSink",
    "RedisNotificationSink",
    "send_notification",
    "set_notification_sink",
]

log = structlog.get_logger("perfkit.jobs")

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class NotificationPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Payload of ``notifications.send``: who, what kind, and its data."""

    user_id: NonEmpty
    type: NonEmpty
    data: dict[str, Any] = {}


class NotificationSink(Protocol):
    """Anything that can deliver a notification and report how it went."""

    def deliver(self, notification: NotificationPayload) -> DeliveryReport:
        """Deliver ``notification``; raise on failure (the job is then retried)."""
        ...


class LogNotificationSink:
    """Logs that a notification was *not* delivered (no sink configured); the default."""

    def deliver(self, notification: NotificationPayload) -> DeliveryReport:
        """Log the notification's type and user; report it undelivered."""
        log.warning(
            "notification not delivered: no sink configured",
            user_id=notification.user_id,
            type=notification.type,
        )
        return DeliveryReport(delivered=False, backend="log", detail="logged only")


class RedisNotificationSink:
    """Delivers to Redis: a capped per-user inbox list and a pub/sub channel.

    Each notification is pushed as JSON to ``{prefix}:{user_id}`` (newest first, at most
    ``keep`` kept) and published on ``prefix`` for live listeners. The default prefix is
    outside the cache's default namespace (``perfkit:``), which the cache may clear.
    """

    def __init__(self, url: str, *, prefix: str = "perfkit-notifications", keep: int = 100) -> None:
        self.url = url
        self.prefix = prefix
        self.keep = keep
        self._client: redis.Redis | None = None

    def deliver(self, notification: NotificationPayload) -> DeliveryReport:
        """Push and publish ``notification`` in one round trip."""
        if self._client is None:
            self._client = redis.Redis.from_url(self.url)
        body = msgspec.json.encode(notification)
        inbox = f"{self.prefix}:{notification.user_id}"
        pipe = self._client.pipeline(transaction=True)
        pipe.lpush(inbox, body)
        pipe.ltrim(inbox, 0, self.keep - 1)
        pipe.publish(self.prefix, body)
        listeners = pipe.execute()[2]
        return DeliveryReport(
            delivered=True, backend="redis", detail=f"{inbox} ({listeners} live listener(s))"
        )


_sink: _defaults.Slot[NotificationSink] = _defaults.slot(
    "jobs.notification_sink", LogNotificationSink
)


def set_notification_sink(sink: NotificationSink) -> None:
    """Use ``sink`` for ``notifications.send`` in this process."""
    _sink.value = sink


@processor("notifications.send", queue="notifications")
def send_notification(payload: NotificationPayload) -> DeliveryReport:
    """Deliver ``payload`` through the configured sink."""
    return _sink.value.deliver(payload)
