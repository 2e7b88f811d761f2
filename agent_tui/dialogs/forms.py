"""Small forms: quick-create, inquiry, complaint, transfer, fill-in. Each returns a dict (or None)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from agent_tui.widgets.footer import FittingFooter

SEVERITIES = ("low", "medium", "high", "critical")
LOCALES = ("zh-CN", "zh-TW", "en")


class FormDialog(ModalScreen[dict[str, str] | None]):
    """Base: a titled box, ctrl+s (or the button) submits, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]
    TITLE_TEXT = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.TITLE_TEXT, classes="dialog-title")
            yield from self.fields()
            yield Static("", classes="dialog-error")
            yield Button("Save (ctrl+s)", variant="primary", id="save")
        yield FittingFooter(compact=True)

    def fields(self) -> ComposeResult:
        yield from ()

    def values(self) -> dict[str, str] | str:
        """The result, or an error message to show."""
        return {}

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.focus_next()

    def action_submit(self) -> None:
        result = self.values()
        if isinstance(result, str):
            self.query_one(".dialog-error", Static).update(result)
            return
        self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _text(self, selector: str) -> str:
        widget = self.query_one(selector)
        if isinstance(widget, TextArea):
            return widget.text.strip()
        assert isinstance(widget, Input)
        return widget.value.strip()


class QuickCreateDialog(FormDialog):
    TITLE_TEXT = "Unknown caller — quick-create a member"

    def __init__(self, name: str = "") -> None:
        super().__init__()
        self._name = name

    def fields(self) -> ComposeResult:
        yield Input(self._name, placeholder="Name (any script)", id="qc-name", max_length=200)
        yield Input(placeholder="Phone number", id="qc-phone", max_length=32)
        yield Select(
            [(loc, loc) for loc in LOCALES], value="zh-CN", id="qc-locale", allow_blank=False
        )
        yield Input(placeholder="Email (optional)", id="qc-email", max_length=254)

    def values(self) -> dict[str, str] | str:
        name, phone = self._text("#qc-name"), self._text("#qc-phone")
        if not name or not phone:
            return "Name and phone number are needed."
        result = {
            "name": name,
            "phone": phone,
            "locale": str(self.query_one("#qc-locale", Select).value),
        }
        email = self._text("#qc-email")
        if email:
            result["email"] = email
        return result


class InquiryDialog(FormDialog):
    TITLE_TEXT = "Log an inquiry"

    def fields(self) -> ComposeResult:
        yield Input(
            placeholder="Category (e.g. points, order, store)", id="inq-category", max_length=64
        )
        yield Input(placeholder="Subject", id="inq-subject", max_length=200)
        yield TextArea(id="inq-body")

    def values(self) -> dict[str, str] | str:
        category, subject = self._text("#inq-category"), self._text("#inq-subject")
        if not category or not subject:
            return "Category and subject are needed."
        result = {"category": category, "subject": subject}
        body = self._text("#inq-body")
        if body:
            result["body"] = body
        return result


class ComplaintDialog(FormDialog):
    TITLE_TEXT = "Log a complaint (goes to the maintaining agent)"

    def fields(self) -> ComposeResult:
        yield Select(
            [(s, s) for s in SEVERITIES], value="medium", id="cmp-severity", allow_blank=False
        )
        yield Input(
            placeholder="Category (e.g. service, product, delivery)",
            id="cmp-category",
            max_length=64,
        )
        yield TextArea(id="cmp-description")

    def values(self) -> dict[str, str] | str:
        category, description = self._text("#cmp-category"), self._text("#cmp-description")
        if not category or not description:
            return "Category and description are needed."
        return {
            "severity": str(self.query_one("#cmp-severity", Select).value),
            "category": category,
            "description": description,
        }


class TransferDialog(FormDialog):
    TITLE_TEXT = "Blind transfer to extension"

    def fields(self) -> ComposeResult:
        yield Input(placeholder="Extension", id="xfer-target", max_length=32)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def values(self) -> dict[str, str] | str:
        target = self._text("#xfer-target")
        return {"target": target} if target else "Enter an extension."


FILL_HELP = {
    "birthday": "Birthday 生日 (YYYY-MM-DD)",
    "gender": "Gender 性别 (F / M / X)",
    "city": "City 城市",
    "email": "Email 邮箱",
    "consent": "Consent 授权: call,sms,email or none",
}


class FillDialog(FormDialog):
    """Fill in a missing item of the member's file while the member is on the line."""

    TITLE_TEXT = "Fill in the member's file · 补全会员资料"

    def __init__(self, items: tuple[str, ...]) -> None:
        super().__init__()
        self.items = items or tuple(FILL_HELP)

    def fields(self) -> ComposeResult:
        yield Select(
            [(FILL_HELP.get(i, i), i) for i in self.items],
            value=self.items[0],
            id="fill-field",
            allow_blank=False,
        )
        yield Input(placeholder="The member's answer", id="fill-value", max_length=254)

    def on_mount(self) -> None:
        self.query_one("#fill-value", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def values(self) -> dict[str, str] | str:
        value = self._text("#fill-value")
        if not value:
            return "Type the member's answer."
        return {"field": str(self.query_one("#fill-field", Select).value), "value": value}
