"""The preview card: the member a preview campaign offers, before the agent dials."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from agent_tui.model import Preview


def card_text(p: Preview) -> Text:
    """Name, tier, member number, masked phone (as the member header), then why and keys."""
    m = p.member
    text = Text("PREVIEW ", style="bold reverse")
    text.append(f" campaign {p.campaign or '—'}\n", style="bold")
    text.append(
        f"{m.name}  {m.tier or '—'}  No. {m.member_no or '—'}  ☎ {m.phone_masked or '—'}\n",
        style="bold",
    )
    text.append(f"Why: {p.reason or '—'}")
    if p.attempts:
        text.append(f"  · {p.attempts} earlier attempt(s)")
    text.append("\nF7 dial · k skip")
    return text


class PreviewCard(Static):
    DEFAULT_CSS = """
    PreviewCard { height: auto; padding: 0 1; margin: 1 0; border: round $accent; display: none; }
    """

    def show(self, preview: Preview | None) -> None:
        self.display = preview is not None
        if preview is not None:
            self.update(card_text(preview))
