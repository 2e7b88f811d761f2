"""A footer that fits the terminal, and the full key list behind ``F1``.

Textual's footer lays every key out in one row and lets the terminal cut the row wherever
it ends: at 80 columns the call view lost its last keys mid-word. :class:`FittingFooter`
shows keys in binding order -- each screen lists its most important keys first -- while
they fit; when some do not, the last slot says ``f1 Keys`` and :class:`KeysScreen` lists
every key of the screen, so nothing is reachable only by knowing it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Label, Static
from textual.widgets._footer import FooterKey

KEYS_BINDING = Binding("f1", "keys", "Keys", show=False)
"""The app-wide key that opens :class:`KeysScreen` (shown by the footer when keys are left out)."""


def _key_rows(screen: Screen[Any], *, every: bool = False) -> list[tuple[Binding, bool, str]]:
    """The screen's bindings shown in footers (``every``: all those with a description),
    one per action, in binding order."""
    seen: set[str] = set()
    rows = []
    for _node, binding, enabled, tooltip in screen.active_bindings.values():
        shown = binding.show or (every and bool(binding.description))
        if not shown or binding.action in seen:
            continue
        seen.add(binding.action)
        rows.append((binding, enabled, tooltip))
    return rows


class FittingFooter(Footer):
    """Keys in binding order while they fit the width, then ``f1 Keys`` (compact style)."""

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self.size.width or self.app.size.width
        rows = _key_rows(self.screen)

        def cost(binding: Binding) -> int:  # "key description" + the 1-cell margin
            return (
                cell_len(self.app.get_key_display(binding)) + 1 + cell_len(binding.description) + 1
            )

        total = sum(cost(b) for b, _e, _t in rows)
        room = width if total <= width else width - cost(KEYS_BINDING)
        used = 0
        cut = False
        for binding, enabled, tooltip in rows:
            used += cost(binding)
            if used > room:
                cut = True
                break
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if cut:
            yield FooterKey(
                KEYS_BINDING.key,
                self.app.get_key_display(KEYS_BINDING),
                KEYS_BINDING.description,
                KEYS_BINDING.action,
            ).data_bind(compact=Footer.compact)

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready:
            self.call_after_refresh(self.recompose)


class KeysScreen(ModalScreen[None]):
    """Every key of the screen underneath, with what it does (dim: not available now)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "dismiss_keys", "Close"),
    ]
    DEFAULT_CSS = """
    KeysScreen { align: center middle; }
    KeysScreen > Vertical { width: 44; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface; }
    KeysScreen #keys-list { width: 100%; height: auto; }
    """

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self._key_rows = _key_rows(screen, every=True)

    def compose(self) -> ComposeResult:
        rows = [(self.app.get_key_display(b), b.description, e) for b, e, _t in self._key_rows]
        width = max((cell_len(k) for k, _d, _e in rows), default=0)
        text = Text()
        for key, description, enabled in rows:
            line = Text(" " * (width - cell_len(key)) + key + "  ", style="bold")
            line.append(description)
            if not enabled:
                line.stylize("dim")
            text.append_text(line)
            text.append("\n")
        with Vertical():
            yield Label("Keys on this screen (Esc closes)", classes="dialog-title")
            yield Static(text, id="keys-list")

    def action_dismiss_keys(self) -> None:
        self.dismiss(None)
