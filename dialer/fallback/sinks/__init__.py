"""Local stand-ins for the providers: a Twilio-REST-shaped SMS sink and an SMTP sink.

``memberline demo``, the bench and the tests point the real clients (twilio, aiosmtplib) at
these over loopback. Both store what they receive and can inject faults.
"""

from dialer.fallback.sinks.local import LocalSinks
from dialer.fallback.sinks.smtp_sink import SmtpSink, StoredMail
from dialer.fallback.sinks.twilio_sink import SinkMessage, TwilioSink

__all__ = ["LocalSinks", "SinkMessage", "SmtpSink", "StoredMail", "TwilioSink"]
