"""The built-in ``email.send`` processor and its pluggable senders.

Bodies come from templates registered with :func:`register_email_template`
(``string.Template`` syntax, ``$order_id``). The sender is :class:`LogEmailSender` until
:func:`set_email_sender` installs another, e.g. :class:`SMTPEmailSender`; the log sender
reports ``delivered=False``, never a fake success.
"""

from __future__ import annotations

import dataclasses
import smtplib
import string
from email.message import EmailMessage as MimeMessage
from typing import Annotated, Any, Protocol

import msgspec
import structlog

from perfkit import _defaults
from perfkit._errors import JobError, PermanentJobError
from perfkit.jobs.builtins.delivery import DeliveryReport
from perfkit.jobs.processor import processor

__all__ = [
    "EmailMessage",
    "EmailPayload",
    "EmailSender",
    "LogEmailSender",
    "SMTPEmailSender",
    "register_email_template",
    "send_email",
    "set_email_sender",
]

log = structlog.get_logger("perfkit.jobs")

Address = Annotated[str, msgspec.Meta(pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")]


class EmailPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Payload of ``email.send``: recipient, subject, template name and its data."""

    to: Address
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=998)]
    template: Annotated[str, msgspec.Meta(min_length=1)]
    data: dict[str, Any] = {}


class EmailMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A rendered email, as senders receive it."""

    to: str
    subject: str
    body: str


class EmailSender(Protocol):
    """Anything that can send an :class:`EmailMessage` and report how it went."""

    def send(self, message: EmailMessage) -> DeliveryReport:
        """Send ``message``; raise on failure (the job is then retried)."""
        ...


def _masked(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


class LogEmailSender:
    """Logs that an email was *not* sent (no transport configured); the default."""

    def send(self, message: EmailMessage) -> DeliveryReport:
        """Log the message's recipient (masked) and subject; report it undelivered."""
        log.warning("email not sent: no email sender configured", to=_masked(message.to))
        return DeliveryReport(delivered=False, backend="log", detail="logged only, not sent")


@dataclasses.dataclass(eq=False, repr=False)
class SMTPEmailSender:
    """Sends through an SMTP server with :mod:`smtplib` (one connection per message)."""

    host: str
    port: int = 25
    _: dataclasses.KW_ONLY
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0

    def __repr__(self) -> str:  # never show the password
        return f"SMTPEmailSender({self.host!r}, {self.port}, sender={self.sender!r})"

    def send(self, message: EmailMessage) -> DeliveryReport:
        """Send ``message``; SMTP errors propagate so that the job is retried."""
        mime = MimeMessage()
        mime["From"] = self.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime.set_content(message.body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            refused = smtp.send_message(mime)
        if refused:
            raise JobError(f"SMTP server refused recipients: {sorted(refused)}")
        return DeliveryReport(delivered=True, backend="smtp", detail=f"{self.host}:{self.port}")


_templates: _defaults.Slot[dict[str, string.Template]] = _defaults.slot(
    "jobs.email_templates", dict, declaration=True
)
_sender: _defaults.Slot[EmailSender] = _defaults.slot("jobs.email_sender", LogEmailSender)


def register_email_template(name: str, body: str) -> None:
    """Register (or replace) the body template ``name`` (``$field`` placeholders)."""
    _templates.value[name] = string.Template(body)


def set_email_sender(sender: EmailSender) -> None:
    """Use ``sender`` for ``email.send`` in this process (call it where workers start)."""
    _sender.value = sender


def render(payload: EmailPayload) -> EmailMessage:
    """The message for ``payload``; an unknown template or a missing field raises
    :class:`PermanentJobError` (the job fails at once: a retry would fail the same way)."""
    template = _templates.value.get(payload.template)
    if template is None:
        raise PermanentJobError(
            f"no email template named {payload.template!r}: register it with "
            "perfkit.jobs.builtins.register_email_template() in the worker"
        )
    try:
        body = template.substitute(payload.data)
    except KeyError as exc:
        raise PermanentJobError(
            f"email template {payload.template!r} needs data field {exc}"
        ) from exc
    return EmailMessage(to=payload.to, subject=payload.subject, body=body)


@processor("email.send", queue="email")
def send_email(payload: EmailPayload) -> DeliveryReport:
    """Render ``payload`` with its template and send it with the configured sender."""
    return _sender.value.send(render(payload))
