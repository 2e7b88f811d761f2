"""Wiring for the composition root: one call starts the survey services.

::

    from surveys.service import start_survey_services

    services = await start_survey_services(
        engine,
        agi_host=cfg.agi.bind, agi_port=cfg.agi.port,
        web_root=site_root,                                  # the webhook Site's root Resource
        twilio_auth_token=cfg.messaging.twilio_auth_token.get(),
        public_url=cfg.messaging.public_url,
        default_queue=cfg.ami.queue,
    )
    ...
    await services.close()

The Twilio voice resource is mounted only when a web root and an auth token are given (no
token = signatures cannot be checked = no endpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from twisted.web.resource import Resource

from surveys.agi import SurveyAgiServer
from surveys.store import SurveyRecorder
from surveys.twilio_voice import SurveyVoiceResource, mount_survey_voice

log = logging.getLogger(__name__)

__all__ = ["SurveyServices", "start_survey_services"]


@dataclass
class SurveyServices:
    recorder: SurveyRecorder
    agi: SurveyAgiServer
    voice: SurveyVoiceResource | None

    async def close(self) -> None:
        await self.agi.close()
        if self.voice is not None:
            await self.voice.close()


async def start_survey_services(
    engine: Engine,
    *,
    agi_host: str = "127.0.0.1",
    agi_port: int = 4573,
    web_root: Resource | None = None,
    twilio_auth_token: str = "",
    public_url: str = "",
    default_queue: str = "members",
    default_survey: str = "satisfaction",
    audio_base_url: str | None = None,
) -> SurveyServices:
    recorder = SurveyRecorder(engine, default_queue=default_queue)
    agi = SurveyAgiServer(recorder, default_survey=default_survey)
    await agi.start(agi_host, agi_port)
    voice = None
    if web_root is not None and twilio_auth_token:
        voice = SurveyVoiceResource(
            recorder,
            auth_token=twilio_auth_token,
            public_url=public_url,
            audio_base_url=audio_base_url,
        )
        mount_survey_voice(web_root, voice)
    elif web_root is not None:
        log.warning("no Twilio auth token configured: the Twilio survey endpoint is not mounted")
    return SurveyServices(recorder, agi, voice)
