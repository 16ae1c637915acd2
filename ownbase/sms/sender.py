"""SMS backends behind one interface: console (log + outbox), Amazon SNS (aiobotocore), Twilio (httpx).

Every send is recorded in ``ownbase.sms_outbox``: the console backend with the text (a local SMS
catcher), the others without it (an audit trail that holds no one-time codes).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import asyncpg
import httpx

from ownbase.settings import Settings

log = logging.getLogger("ownbase.sms")


@dataclass(frozen=True)
class Sms:
    to: str  # E.164 with the leading +
    body: str
    kind: str = ""


class SmsError(Exception):
    """The provider refused or could not be reached; the text is the provider's reason."""


class Transport(Protocol):
    name: str

    async def deliver(self, sms: Sms) -> str: ...


class ConsoleTransport:
    name = "console"

    async def deliver(self, sms: Sms) -> str:
        log.warning("sms to %s: %s", sms.to, sms.body)
        return str(uuid.uuid4())


class SnsTransport:
    name = "sns"

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._session: Any = None

    async def deliver(self, sms: Sms) -> str:
        from aiobotocore.session import get_session  # noqa: PLC0415 - slow to import; SNS only

        if self._session is None:
            self._session = get_session()
        kwargs: dict[str, Any] = {"region_name": self.s.auth_sms_sns_region}
        if self.s.auth_sms_sns_endpoint_url:
            kwargs["endpoint_url"] = self.s.auth_sms_sns_endpoint_url
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if self.s.auth_sms_sns_sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String",
                                                  "StringValue": self.s.auth_sms_sns_sender_id}
        try:
            async with self._session.create_client("sns", **kwargs) as client:
                reply = await client.publish(PhoneNumber=sms.to, Message=sms.body,
                                             MessageAttributes=attributes)
        except Exception as exc:  # noqa: BLE001 - botocore's many error types: the reason is what matters
            raise SmsError(str(exc)) from None
        return str(reply.get("MessageId", ""))


class TwilioTransport:
    """Twilio's Messages API (form POST, basic auth with the account SID and auth token)."""

    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    async def deliver(self, sms: Sms) -> str:
        s = self.s
        account = quote(s.auth_sms_twilio_account_sid, safe="")
        url = f"{s.auth_sms_twilio_api_url.rstrip('/')}/2010-04-01/Accounts/{account}/Messages.json"
        sender = s.auth_sms_twilio_message_service_sid
        form = {"To": sms.to, "Body": sms.body}
        form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                reply = await client.post(url, data=form,
                                          auth=(s.auth_sms_twilio_account_sid, s.auth_sms_twilio_auth_token))
        except httpx.HTTPError as exc:
            raise SmsError(f"twilio unreachable: {type(exc).__name__}") from None
        try:
            data = reply.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if reply.status_code >= 300 or data.get("error_code"):
            raise SmsError(str(data.get("message") or data.get("error_message") or f"status {reply.status_code}"))
        return str(data.get("sid", ""))


def transport_for(settings: Settings) -> Transport:
    if settings.auth_sms_provider == "sns":
        return SnsTransport(settings)
    if settings.auth_sms_provider == "twilio":
        return TwilioTransport(settings)
    return ConsoleTransport()


class SmsSender:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, transport: Transport | None = None) -> None:
        self.pool = pool
        self.transport = transport or transport_for(settings)

    async def send(self, sms: Sms) -> str:
        """Deliver ``sms`` and record it; return the provider's message id, raise SmsError on failure."""
        status, error, message_id = "sent", None, ""
        try:
            message_id = await self.transport.deliver(sms)
        except SmsError as exc:
            status, error = "failed", str(exc)
            log.error("sms to %s failed: %s", sms.to, error)
        keep = self.transport.name == "console"  # only the catcher keeps codes in clear
        await self.pool.execute(
            """insert into ownbase.sms_outbox (backend, to_number, body, kind, message_id, status, error)
               values ($1, $2, $3, $4, $5, $6, $7)""",
            self.transport.name, sms.to, sms.body if keep else "", sms.kind, message_id, status, error)
        if error is not None:
            raise SmsError(error)
        return message_id
