"""Start both sinks in-process for the demo, the bench and tests."""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp

from dialer.fallback.sinks.smtp_sink import SmtpSink
from dialer.fallback.sinks.twilio_sink import TwilioSink


@dataclass
class LocalSinks:
    sms: TwilioSink
    mail: SmtpSink

    @classmethod
    async def start(
        cls, *, sms: TwilioSink | None = None, mail: SmtpSink | None = None
    ) -> LocalSinks:
        mail = await (mail or SmtpSink()).start()
        sms = sms or TwilioSink()
        sms.mail = mail
        await sms.start()
        return cls(sms=sms, mail=mail)

    async def stop(self) -> None:
        await self.sms.stop()
        await self.mail.stop()


class SinkMailProbe:
    """The worker's :class:`~dialer.fallback.worker.MailProbe` for the local SMTP sink,
    asked over HTTP (the worker may run in another process)."""

    def __init__(self, sink_base_url: str) -> None:
        self.url = sink_base_url.rstrip("/") + "/_sink/mail"

    async def received(self, message_id: str) -> bool | None:
        async with (
            aiohttp.ClientSession() as s,
            s.get(self.url, params={"message_id": message_id}) as r,
        ):
            r.raise_for_status()
            value = json.loads(await r.text()).get("received")
            return None if value is None else bool(value)
