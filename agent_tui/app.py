"""The agent console application: owns the hub connection and routes pushes to screens.

Screens live in :mod:`agent_tui.screens`, dialogs in :mod:`agent_tui.dialogs`. The
connection is an App-level worker (it outlives every screen); pushes become
:class:`~agent_tui.messages.HubPush` messages and are routed by :meth:`handle_push`.
Tests and the snapshot factory drive the same path with ``handle_push``.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl as ssl_mod
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive

from agent_tui import heap
from agent_tui.callbook import CallBook
from agent_tui.messages import HubPush, HubStatus
from agent_tui.model import AgentState, CallState, Preview, ScreenPop, Session, Wallboard
from agent_tui.widgets.footer import KEYS_BINDING, KeysScreen
from cti.hubproto.client import HubClient
from cti.hubproto.messages import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from agent_tui.screens.home import HomeScreen

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ConsoleApp(App[None]):
    """``memberline console``: one agent's (or supervisor's) terminal."""

    CSS_PATH = Path(__file__).parent / "theme.tcss"
    """Absolute, so subclasses defined elsewhere (the bench) find it too."""
    TITLE = "Memberline"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+t", "toggle_theme", "Light/dark", show=False),
        KEYS_BINDING,
    ]

    hub_status: reactive[str] = reactive("disconnected")
    """connecting | connected | disconnected | auth_failed (from the HubClient)."""
    agent_state: reactive[AgentState | None] = reactive(None)
    """Our own state as last pushed by the hub."""
    wallboard: reactive[Wallboard | None] = reactive(None)
    """The last wallboard push (supervisors, while subscribed)."""
    preview: reactive[Preview | None] = reactive(None)
    """The preview card on offer (a preview campaign's member), if any."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7070,
        *,
        ssl: ssl_mod.SSLContext | None = None,
        agent: str | None = None,
        password: str | None = None,
        clock: Clock | None = None,
        agent_tz: dt.tzinfo | None = None,
        reconnect_initial: float = 0.2,
        reconnect_max: float = 5.0,
        offline: bool = False,
        status_note: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        super().__init__()
        self.host, self.port, self._ssl = host, port, ssl
        self._initial_agent = agent
        self._initial_password = password
        self.clock: Clock = clock or _utcnow
        """Where every time shown comes from (a fixed clock in snapshot tests)."""
        self.agent_tz: dt.tzinfo = agent_tz or dt.datetime.now().astimezone().tzinfo or dt.UTC
        self.session: Session | None = None
        self.book = CallBook()
        self.client: HubClient | None = None
        self._reconnect = (reconnect_initial, reconnect_max)
        self.home: HomeScreen | None = None
        """The home screen (with the call view), from login on."""
        self.offline = offline
        self.status_note = status_note
        """Where the home screen gets one extra line every few seconds (the demo: its hub
        port and what the rules held back), or None."""
        self.waiting_pop: ScreenPop | None = None
        """A pop that arrived during a wrap-up: shown once the wrap-up is sent."""
        self.unfinished: set[str] = set()
        """Calls whose wrap-up time the hub ended unsaved (on the agent's unfinished list)."""
        self._gc_thresholds: tuple[int, int, int] | None = None
        """CPython's thresholds before :func:`agent_tui.heap.settle` (set once logged in)."""
        """Recorded mode (snapshot tests, demos): no hub; requests quietly give nothing."""

    # -- lifecycle -------------------------------------------------------------
    def on_mount(self) -> None:
        from agent_tui.screens.login import LoginScreen

        if self.offline:
            return
        self.push_screen(LoginScreen(self._initial_agent or "", self._initial_password))

    def _settle_heap(self) -> None:
        if self._gc_thresholds is None:
            self._gc_thresholds = heap.settle()
            self.set_interval(5.0, heap.collect_if_due)

    def on_unmount(self) -> None:
        if self._gc_thresholds is not None:
            heap.release(self._gc_thresholds)
            self._gc_thresholds = None

    async def action_quit(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.close()
        self.exit()

    def action_keys(self) -> None:
        """F1: every key of the current screen (the footer shows what fits)."""
        if not isinstance(self.screen, KeysScreen):
            self.push_screen(KeysScreen(self.screen))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    @work(exclusive=True, exit_on_error=False, group="hub")
    async def login(self, agent: str, password: str) -> None:
        """Connect, hello, login; on success the client keeps the session alive by itself."""
        from agent_tui.screens.login import LoginScreen

        client = HubClient(
            self.host,
            self.port,
            agent,
            password,
            ssl=self._ssl,
            reconnect_initial=self._reconnect[0],
            reconnect_max=self._reconnect[1],
        )
        client.on_push(self._push_arrived)
        client.on_status(self._status_changed)
        try:
            result = await client.start()
        except ProtocolError as exc:
            text = {
                ErrorCode.BAD_CREDENTIALS: "Wrong agent id or password.",
            }.get(exc.code, f"{exc.code.value}: {exc.message}")
            if exc.code is ErrorCode.RATE_LIMITED:  # the hub says which limit: account or address
                text = f"Too many attempts: {exc.message}."
            if isinstance(self.screen, LoginScreen):
                self.screen.show_error(text)
            return
        except (OSError, TimeoutError) as exc:
            if isinstance(self.screen, LoginScreen):
                self.screen.show_error(f"Cannot reach the hub at {self.host}:{self.port} ({exc}).")
            return
        self.client = client
        self.hub_status = "connected"
        self.start_session(result)

    def _push_arrived(self, name: str, data: dict[str, Any]) -> None:
        self.post_message(HubPush(name, data))

    def _status_changed(self, status: str) -> None:
        self.post_message(HubStatus(status))

    def start_session(self, login_result: dict[str, Any]) -> None:
        """Show the home screen for a login result (the hub's, or a recorded one)."""
        from agent_tui.screens.home import HomeScreen
        from agent_tui.screens.login import LoginScreen

        self.session = Session.parse(login_result)
        self.home = HomeScreen()
        if isinstance(self.screen, LoginScreen):
            self.switch_screen(self.home)
        else:
            self.push_screen(self.home)
        if self._gc_thresholds is None:
            self.call_after_refresh(self._settle_heap)

    # -- requests ----------------------------------------------------------------
    async def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        """One hub command; raises ProtocolError / ConnectionError."""
        if self.client is None:
            raise ConnectionError("not connected to the hub")
        return await self.client.request(cmd, **args)

    async def call_hub(self, cmd: str, **args: Any) -> dict[str, Any] | None:
        """One hub command; errors are shown to the agent and give ``None``."""
        if self.offline:
            return None
        try:
            return await self.request(cmd, **args)
        except ProtocolError as exc:
            self.notify(exc.message or exc.code.value, title=exc.code.value, severity="error")
        except (ConnectionError, TimeoutError):
            self.notify("The hub is not reachable; try again shortly.", severity="error")
        return None

    # -- pushes ------------------------------------------------------------------
    def on_hub_status(self, message: HubStatus) -> None:
        self.hub_status = message.status

    def on_hub_push(self, message: HubPush) -> None:
        self.handle_push(message.name, message.data)

    def handle_push(self, name: str, data: dict[str, Any]) -> None:
        if name == "agent_state":
            self.agent_state = AgentState.parse(data)
        elif name == "screen_pop":
            self.show_pop(ScreenPop.parse(data))
        elif name == "call_state":
            self._call_changed(CallState.parse(data))
        elif name == "pop_withdrawn":
            self.withdraw_pop(str(data.get("call_id", "")))
        elif name == "wallboard":
            self.wallboard = Wallboard.parse(data)
        elif name == "preview":
            card = Preview.parse(data)
            if not card.withdrawn:
                self.preview = card
            elif self.preview is not None and self.preview.entry_id == card.entry_id:
                self.preview = None
        elif name == "notice":
            if data.get("kind") == "unfinished":
                self.unfinished.add(str(data.get("call_id", "")))
            level = str(data.get("level", "info"))
            severity = level if level in ("warning", "error") else "information"
            self.notify(str(data.get("text", "")), severity=severity)  # type: ignore[arg-type]
        else:
            log.debug("ignoring push %s", name)

    def show_pop(self, pop: ScreenPop) -> None:
        """Show a pop on the home screen's call view; the same call again keeps the notes."""
        from agent_tui.screens.wrapup import WrapUpScreen

        self.book.add_pop(pop)
        home = self.home
        if home is None:
            return
        if home.call_id == pop.call_id:
            home.update_pop(pop)
            return
        wrap = next((s for s in self.screen_stack if isinstance(s, WrapUpScreen)), None)
        if wrap is not None and wrap.call_id not in self.unfinished:
            # A wrap-up is never replaced by the next call: the pop waits behind it.
            self.waiting_pop = pop
            self.notify("A call is waiting: finish the wrap-up first.", severity="warning")
            return
        self.open_call(pop)

    def withdraw_pop(self, call_id: str) -> None:
        """``pop_withdrawn``: another agent answered (or the ring stopped): not our call."""
        from agent_tui.screens.wrapup import WrapUpScreen

        self.book.withdraw(call_id)
        if self.waiting_pop is not None and self.waiting_pop.call_id == call_id:
            self.waiting_pop = None
        for screen in list(self.screen_stack):
            if isinstance(screen, WrapUpScreen) and screen.call_id == call_id:
                self.finish_call(call_id)
                return
        if self.home is not None and self.home.call_id == call_id:
            self.home.clear_call()

    def open_call(self, pop: ScreenPop) -> None:
        """Bring the home screen to the top with ``pop`` in its call view."""
        home = self.home
        if home is None:
            return
        while self.screen is not home and len(self.screen_stack) > 1:
            self.pop_screen()
        home.load(pop)

    def _call_changed(self, call: CallState) -> None:
        from agent_tui.screens.wrapup import WrapUpScreen

        self.book.update_call(call)
        home = self.home
        showing = home is not None and home.call_id == call.call_id
        if showing and home is not None:
            home.call_changed(call)
        if call.state != "ended" or call.call_id in self.book.wrapped:
            return
        if any(isinstance(s, WrapUpScreen) for s in self.screen_stack):
            return  # one wrap-up at a time: this one is opened when the current one is sent
        if call.wrapup_due is False:
            return  # not ours to wrap up (another agent answered it), or done already
        if call.wrapup_due is None:
            if call.call_id not in self.book.pops and call.member_id is None:
                return  # not a call this console showed (e.g. a stray call_state)
        self.push_screen(WrapUpScreen(call.call_id))

    def finish_call(self, call_id: str) -> None:
        """After wrap-up: forget the call and go back to the home screen (then the next
        wrap-up, or the call that waited behind this one)."""
        from agent_tui.screens.wrapup import WrapUpScreen

        self.book.finish(call_id)
        home = self.home
        while len(self.screen_stack) > 1 and self.screen is not home:
            self.pop_screen()
        if home is not None and home.call_id == call_id:
            home.clear_call()
        self.unfinished.discard(call_id)
        waiting, self.waiting_pop = self.waiting_pop, None
        live = waiting is not None and waiting.call_id in self.book.pops
        call = self.book.calls.get(waiting.call_id) if waiting is not None else None
        if waiting is not None and live and (call is None or call.state != "ended"):
            self.open_call(waiting)
            return
        due = self.book.awaiting_wrapup()
        if due:
            self.push_screen(WrapUpScreen(due[0]))  # the next wrap-up that waited behind
        elif waiting is not None and live:
            self.open_call(waiting)

    def member_tz(self, name: str) -> dt.tzinfo:
        try:
            return ZoneInfo(name)
        except (KeyError, ValueError):
            return dt.UTC
