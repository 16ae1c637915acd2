"""Mail backends behind one interface: console (log + outbox), SMTP (aiosmtplib), SES v2 (aiobotocore).

Every backend records what it sent (or failed to send) in ``ownbase.mail_outbox``: the console
backend with the full mail (a local mail catcher), the others without bodies (an audit trail that
holds no one-time codes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import aiosmtplib
import asyncpg

from ownbase.settings import Settings

log = logging.getLogger("ownbase.mail")


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str
    html: str
    kind: str = ""


class Transport(Protocol):
    name: str

    async def deliver(self, sender: str, message: Message) -> None: ...


class ConsoleTransport:
    name = "console"

    async def deliver(self, sender: str, message: Message) -> None:
        log.warning("mail to %s: %s\n%s", message.to, message.subject, message.text)


def build_mime(sender: str, message: Message) -> EmailMessage:
    mime = EmailMessage()
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(localtime=False)
    mime["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">") or "localhost")
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


class SmtpTransport:
    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    async def deliver(self, sender: str, message: Message) -> None:
        s = self.s
        await aiosmtplib.send(
            build_mime(sender, message),
            hostname=s.mail_smtp_host,
            port=s.mail_smtp_port,
            username=s.mail_smtp_user or None,
            password=s.mail_smtp_password or None,
            use_tls=s.mail_smtp_ssl,
            start_tls=True if s.mail_smtp_starttls else False,
            timeout=30,
        )


class SesTransport:
    name = "ses"

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._session: Any = None

    async def deliver(self, sender: str, message: Message) -> None:
        from aiobotocore.session import get_session  # noqa: PLC0415 - aiobotocore is slow to import; only the SES transport needs it

        if self._session is None:
            self._session = get_session()
        kwargs: dict[str, Any] = {"region_name": self.s.mail_ses_region}
        if self.s.mail_ses_endpoint_url:
            kwargs["endpoint_url"] = self.s.mail_ses_endpoint_url
        async with self._session.create_client("sesv2", **kwargs) as client:
            await client.send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": [message.to]},
                Content={"Simple": {
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"},
                             "Html": {"Data": message.html, "Charset": "UTF-8"}},
                }},
            )


def transport_for(settings: Settings) -> Transport:
    if settings.mail_backend == "smtp":
        return SmtpTransport(settings)
    if settings.mail_backend == "ses":
        return SesTransport(settings)
    return ConsoleTransport()


class MailError(Exception):
    pass


class Mailer:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, transport: Transport | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.transport = transport or transport_for(settings)

    async def send(self, message: Message) -> None:
        status, error = "sent", None
        try:
            await self.transport.deliver(self.settings.mail_from, message)
        except Exception as exc:  # noqa: BLE001 - recorded, then surfaced as a 500 by the caller
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("mail to %s failed: %s", message.to, error)
        # Real backends keep only an audit line: bodies carry one-time codes, which must not be
        # stored in clear outside the console backend (a development mail catcher).
        keep = self.transport.name == "console"
        await self.pool.execute(
            """insert into ownbase.mail_outbox (backend, to_address, from_address, subject, text_body,
                   html_body, kind, status, error) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            self.transport.name, message.to, self.settings.mail_from, message.subject,
            message.text if keep else "", message.html if keep else "", message.kind, status, error)
        if error is not None:
            raise MailError(error)
