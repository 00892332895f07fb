"""The built-in job processors: e-mail, notifications, data export and cache warming.

They sit apart from the jobs core (service, worker, queues, processors, periodic) because
they use the other parts: ``cache.warm`` runs the cache's warmer, ``data.export`` reads
through a :class:`~perfkit.queries.TimedPool`. The core never imports them (an
import-linter contract checks it); :mod:`perfkit.jobs` re-exports their public names.
"""

from perfkit.jobs.builtins.delivery import DeliveryReport
from perfkit.jobs.builtins.export import (
    DataExportPayload,
    ExportReport,
    export_data,
    register_export_query,
    set_export_directory,
    set_export_pool,
)
from perfkit.jobs.builtins.mail import (
    EmailMessage,
    EmailPayload,
    EmailSender,
    LogEmailSender,
    SMTPEmailSender,
    register_email_template,
    send_email,
    set_email_sender,
)
from perfkit.jobs.builtins.notify import (
    LogNotificationSink,
    NotificationPayload,
    NotificationSink,
    RedisNotificationSink,
    send_notification,
    set_notification_sink,
)
from perfkit.jobs.builtins.warming import CacheWarmPayload, warm_cache

__all__ = [
    "CacheWarmPayload",
    "DataExportPayload",
    "DeliveryReport",
    "EmailMessage",
    "EmailPayload",
    "EmailSender",
    "ExportReport",
    "LogEmailSender",
    "LogNotificationSink",
    "NotificationPayload",
    "NotificationSink",
    "RedisNotificationSink",
    "SMTPEmailSender",
    "export_data",
    "register_email_template",
    "register_export_query",
    "send_email",
    "send_notification",
    "set_email_sender",
    "set_export_directory",
    "set_export_pool",
    "set_notification_sink",
    "warm_cache",
]
