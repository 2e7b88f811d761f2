"""SMS and email fallbacks: a transactional outbox delivered exactly once, with consent.

Public API (what the dialer runner, surveys and the composition root use)::

    from dialer.fallback import enqueue, Purpose, OrderPolicy
    enqueue(session, Purpose.EXHAUSTED, member_id, campaign_id=7)     # in your transaction

    worker = OutboxWorker(engine, content=..., rules=..., settings=..., sms=TwilioSms(...),
                          email=SmtpEmail(...))
    await run_worker(worker, stop=stop_event)

    mount_webhooks(root_resource, WebhookContext(engine, auth_token, public_url, secret))
"""

from dialer.fallback.content import ContentSettings
from dialer.fallback.email import EmailSettings, SmtpEmail
from dialer.fallback.outbox import Enqueued, enqueue, idempotency_key
from dialer.fallback.purposes import DEFAULT_POLICIES, OrderPolicy, Purpose
from dialer.fallback.results import SendOutcome, SendResult
from dialer.fallback.send_rules import RulesConfig, parse_hhmm
from dialer.fallback.sms import INBOUND_PATH, STATUS_PATH, SmsSettings, TwilioSms
from dialer.fallback.store import SendRetryPolicy
from dialer.fallback.webhooks import WebhookContext, mount_webhooks
from dialer.fallback.worker import MailProbe, OutboxWorker, WorkerSettings, WorkerStats, run_worker

__all__ = [
    "DEFAULT_POLICIES",
    "INBOUND_PATH",
    "STATUS_PATH",
    "ContentSettings",
    "EmailSettings",
    "Enqueued",
    "MailProbe",
    "OrderPolicy",
    "OutboxWorker",
    "Purpose",
    "RulesConfig",
    "SendOutcome",
    "SendResult",
    "SendRetryPolicy",
    "SmsSettings",
    "SmtpEmail",
    "TwilioSms",
    "WebhookContext",
    "WorkerSettings",
    "WorkerStats",
    "enqueue",
    "idempotency_key",
    "mount_webhooks",
    "parse_hhmm",
    "run_worker",
]
