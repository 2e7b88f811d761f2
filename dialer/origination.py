"""Origination: the Originate a campaign call is placed with, and what its sending tells.

Where an answered call goes is the shipped dialplan (``docs/asterisk/extensions.conf``):

* agent campaigns: ``Context: <campaign_context>`` (``campaign``), ``Exten: <queue>`` —
  optional ``AMD()``, then ``Queue(<queue>,,,,2)`` (the 2-second rule), then the
  safe-harbour prompt;
* survey campaigns (mode ``ivr``): ``Context: <ivr_context>`` (``surveys``), ``Exten:
  <survey>`` — the survey FastAGI; a failed call runs the context's ``failed``
  extension, which only logs (the ledger records the outcome).

The Originate is ``Async`` with ``ChannelId`` preset to the attempt's channel id (and
``OtherChannelId`` to ``<id>-2``), so every AMI event of the call carries our id as
Uniqueid/Linkedid and the ledger (:mod:`dialer.ledger`) can follow it whatever happens to
the action's reply.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cti.ami.errors import AmiActionError, AmiConnectionLost, AmiNotConnected
from dialer.ledger import CallLedger, Fact

log = logging.getLogger(__name__)

SendAction = Callable[[dict[str, str]], Awaitable[Any]]


def originate_action(
    *,
    call_id: str,
    number: str,
    trunk: str,
    context: str,
    exten: str,
    ring_timeout_s: int,
    caller_id: str,
    variables: dict[str, str],
) -> dict[str, str]:
    """The AMI action of one campaign call (pure)."""
    return {
        "Action": "Originate",
        "ActionID": f"dial-{call_id}",
        "Channel": trunk.format(number=number),
        "Context": context,
        "Exten": exten,
        "Priority": "1",
        "Timeout": str(ring_timeout_s * 1000),
        "CallerID": caller_id,
        "Async": "true",
        "ChannelId": call_id,
        "OtherChannelId": f"{call_id}-2",
        "Variable": ",".join(f"{k}={v}" for k, v in variables.items()),
    }


async def send_originate(
    send_action: SendAction,
    action: dict[str, str],
    ledger: CallLedger,
    clock: Callable[[], float],
) -> list[Fact]:
    """Send it and tell the ledger what the reply proves.

    Refused (``Response: Error``): nothing was dialled -> ``failed``. Not sent (no
    connection) -> ``interrupted`` (retry soon; not the member's doing). No reply (timeout) or the connection lost after sending: Asterisk may be
    dialling -> the call stays in flight, *unknown*, until its events or the next channel
    list decide it.
    """
    call_id = action["ChannelId"]
    try:
        await send_action(action)
    except AmiActionError as exc:
        log.warning("originate %s refused: %s", call_id, exc)
        return ledger.send_failed(call_id, clock())
    except AmiConnectionLost as exc:
        log.warning("originate %s: connection lost before the reply (%s); unknown", call_id, exc)
        ledger.send_unknown(call_id, clock())
        return []
    except AmiNotConnected as exc:
        log.warning("originate %s not sent: %s", call_id, exc)
        return ledger.send_failed(call_id, clock(), refused=False)
    except Exception as exc:
        log.warning("originate %s: no reply (%s); its outcome is unknown for now", call_id, exc)
        ledger.send_unknown(call_id, clock())
        return []
    ledger.sent(call_id, clock())
    return []
