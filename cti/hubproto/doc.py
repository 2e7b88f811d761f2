"""Generate docs/hub-protocol.md from the declarations: ``python -m cti.hubproto.doc``."""

from __future__ import annotations

from cti.hubproto.messages import COMMANDS, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, PUSHES, ErrorCode

INTRO = f"""# Console <-> hub protocol (version {PROTOCOL_VERSION})

Generated from `cti/hubproto/messages.py` by `python -m cti.hubproto.doc`; do not edit by hand.

The agent console (`memberline console`) talks only to the hub (`memberline serve`), over
one TCP connection (TLS when the hub is configured with a certificate).

## Framing
One UTF-8 JSON object per line (`\\n`-terminated). A line longer than {MAX_MESSAGE_BYTES:,} bytes
(the hub's `max_message_bytes`) is discarded and answered with a `bad_request` error; the
connection stays open. A line that is not a JSON object is answered the same way.

## Envelope
- request (console -> hub): `{{"id": 7, "cmd": "pause", "args": {{"reason": "lunch"}}}}`
- response (hub -> console): `{{"re": 7, "ok": true, "result": {{...}}}}` or
  `{{"re": 7, "ok": false, "error": {{"code": "forbidden", "message": "..."}}}}`
- push (hub -> console, unsolicited): `{{"push": "screen_pop", "data": {{...}}}}`

Requests are answered in any order; match on `id`. The first request must be `hello`
(a different `protocol` is refused with `unsupported_version`), then `login`. After login
and after every reconnect-and-login the hub pushes `agent_state`, the agent's calls
(`call_state`) and any pop still ringing, so a console that reconnects gets its state again.

## Rules
- An agent acts only on their own calls and on members in reach; supervisors see everyone.
- Phone numbers and emails are masked (`+86 138****8000`) unless revealed with
  `member_reveal` (audited). Every `member_profile` and every pop is written to the audit log.
- Login failures are rate-limited per agent id and per peer address.

## Error codes
"""


def render() -> str:
    lines = [INTRO]
    for code in ErrorCode:
        lines.append(f"- `{code.value}`")
    lines.append("\n## Commands\n")
    for spec in COMMANDS.values():
        lines.append(f"### `{spec.name}` ({spec.role})\n")
        lines.append(spec.doc + "\n")
        if spec.args:
            lines.append("| argument | type | required | notes |")
            lines.append("|---|---|---|---|")
            for f in spec.args:
                notes = f.doc
                if f.max_len:
                    notes += f"; max {f.max_len} chars"
                if f.choices:
                    notes += "; one of " + ", ".join(f"`{c}`" for c in f.choices)
                lines.append(
                    f"| `{f.name}` | {f.type} | {'yes' if f.required else 'no'} | {notes} |"
                )
            lines.append("")
        lines.append(f"Result: `{spec.result}`\n")
        if spec.errors:
            lines.append("Errors: " + ", ".join(f"`{e.value}`" for e in spec.errors) + "\n")
    lines.append("## Pushes\n")
    for p in PUSHES.values():
        lines.append(f"### `{p.name}` ({p.audience})\n")
        lines.append(p.doc + "\n")
        lines.append(f"Data: `{p.data}`\n")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
