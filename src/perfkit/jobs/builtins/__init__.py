"""The built-in job processors: e-mail, notifications, data export and cache warming.

They sit apart from the jobs core (service, worker, queues, processors, periodic) because
they use the other parts: ``cache.warm`` runs the cache's warmer, ``data.export`` reads
through a :class:`~perfkit.queries.TimedPool`. The core never imports them (an
import-linter contract checks it); importing :mod:`perfkit.jobs` registers them. This
package exports what an application configures them with (templates, senders, sinks, the
export pool and directory) and their payloads and reports; the processor functions are in
their modules (``perfkit.jobs.builtins.mail.send_email`` ...).
"""

from perfkit.jobs.builtins.delivery import DeliveryReport
from perfkit.jobs.builtins.export import (
    DataExportPayload,
    ExportReport,
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
    set_email_sender,
)
from perfkit.jobs.builtins.notify import (
    LogNotificationSink,
    NotificationPayload,
    NotificationSink,
    RedisNotificationSink,
    set_notification_sink,
)
from perfkit.jobs.builtins.warming import CacheWarmPayload

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
    "register_email_template",
    "register_export_query",
    "set_email_sender",
    "set_export_directory",
    "set_export_pool",
    "set_notification_sink",
]
