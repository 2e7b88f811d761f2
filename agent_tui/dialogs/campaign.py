"""Create a campaign from a list builder: name, builder, dial mode and the builder's parameter."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from agent_tui.widgets.footer import FittingFooter

BUILDERS: dict[str, tuple[str, str | None, str, str]] = {
    "post_purchase": ("Post-purchase follow-up", "days_ago", "Days after the purchase", "7"),
    "dormant_winback": ("Dormant win-back", "days", "Days without a purchase", "180"),
    "survey": ("Satisfaction survey", "size", "Sample size", "500"),
    "monthly_care": ("Monthly care call (regular members)", None, "No parameter", ""),
    "spend_decline": ("Buying less than usual", "share", "Drop in % vs their own past year", "40"),
}
"""kind -> (label, settings key or None, prompt, default). ``share`` is typed in percent."""
PREVIEW_KINDS = ("monthly_care", "spend_decline")
MODES = ("preview", "progressive", "predictive", "ivr")


class CampaignDialog(ModalScreen[dict[str, Any] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Create"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New campaign", classes="dialog-title")
            yield Input(placeholder="Name (unique)", id="cmp-name", max_length=200)
            yield Select(
                [(label, kind) for kind, (label, *_rest) in BUILDERS.items()],
                value="post_purchase",
                allow_blank=False,
                id="cmp-kind",
            )
            yield Select(
                [(m, m) for m in MODES], value="progressive", allow_blank=False, id="cmp-mode"
            )
            yield Label(BUILDERS["post_purchase"][2], id="cmp-param-label")
            yield Input(BUILDERS["post_purchase"][3], id="cmp-param", type="integer")
            yield Static("", classes="dialog-error")
            yield Button("Create (ctrl+s)", variant="primary", id="cmp-create")
        yield FittingFooter(compact=True)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "cmp-kind" and isinstance(event.value, str):
            _label, _key, prompt, default = BUILDERS[event.value]
            self.query_one("#cmp-param-label", Label).update(prompt)
            self.query_one("#cmp-param", Input).value = default
            if event.value == "survey":
                self.query_one("#cmp-mode", Select).value = "ivr"
            elif event.value in PREVIEW_KINDS:  # personal calls: the maintaining agent first
                self.query_one("#cmp-mode", Select).value = "preview"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        name = self.query_one("#cmp-name", Input).value.strip()
        kind = str(self.query_one("#cmp-kind", Select).value)
        mode = str(self.query_one("#cmp-mode", Select).value)
        raw = self.query_one("#cmp-param", Input).value.strip()
        if not name:
            self.query_one(".dialog-error", Static).update("Give the campaign a name.")
            return
        settings: dict[str, Any] = {}
        key = BUILDERS[kind][1]
        if raw and key is not None:
            if not raw.isdigit():
                self.query_one(".dialog-error", Static).update("The parameter is a whole number.")
                return
            if key == "share":
                if not 1 <= int(raw) <= 99:
                    self.query_one(".dialog-error", Static).update("A drop of 1 to 99 %.")
                    return
                settings[key] = int(raw) / 100
            else:
                settings[key] = int(raw)
        self.dismiss({"name": name, "kind": kind, "mode": mode, "settings": settings})

    def action_cancel(self) -> None:
        self.dismiss(None)
