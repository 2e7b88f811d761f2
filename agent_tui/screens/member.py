"""The shared part of the pop and the profile screen: the member and what can be done for them.

| key | action |
|---|---|
| F2 | log an inquiry |
| F3 | log a complaint (severity, category) |
| F4 | schedule a callback (member's time zone) |
| F5 | redeem points (quote, then confirm) |
| F7 | click-to-dial the member |
| F10 | fill in a missing item of the file (birthday, gender, city, email, consent) |
| ctrl+n / ctrl+p | next / previous history tab (and its list takes the arrow keys) |
| Esc | back |
| F1 | every key of the screen |

After the agent's own change (inquiry, complaint, callback, redemption) the profile is
fetched again, so the history tabs and the next best action show it at once.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen

from agent_tui.model import Profile
from agent_tui.widgets.member import HistoryTabs, NextBestAction, ProfileHeader
from agent_tui.widgets.status import HubBanner, StateBar

if TYPE_CHECKING:
    from agent_tui.app import ConsoleApp


class MemberScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "inquiry", "Inquiry"),
        Binding("f3", "complaint", "Complaint"),
        Binding("f4", "callback", "Callback"),
        Binding("f5", "redeem", "Redeem"),
        Binding("f7", "dial", "Dial"),
        Binding("f10", "fill", "Fill in", show=False),
        Binding("escape", "back", "Back"),
        Binding("ctrl+n", "history_next", "Tabs"),
        Binding("ctrl+p", "history_prev", "Prev tab", show=False),
    ]

    MEMBER_ACTIONS = frozenset({"inquiry", "complaint", "callback", "redeem", "dial", "fill"})

    def __init__(self, profile: Profile | None = None) -> None:
        super().__init__()
        self.profile = profile

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose_member(self) -> ComposeResult:
        yield ProfileHeader(id="profile-header")
        yield NextBestAction(id="nba")

    def compose_top(self) -> ComposeResult:
        yield HubBanner()
        yield StateBar()

    def history(self) -> HistoryTabs:
        return HistoryTabs(self.console.agent_tz, id="history-tabs")

    def caller_label(self) -> str:
        return ""

    def set_profile(self, profile: Profile | None, *, defer_history: bool = False) -> None:
        had_member = self.profile is not None
        self.profile = profile
        self.query_one(ProfileHeader).show(profile, self.caller_label())
        self.query_one(NextBestAction).show(profile)
        self.query_one(HistoryTabs).show(profile, defer=defer_history)
        if had_member != (profile is not None):
            self.refresh_bindings()  # rebuilds the footer: only when member keys change

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MEMBER_ACTIONS and self.profile is None:
            return None  # shown dimmed: needs a member
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_history_next(self) -> None:
        self.query_one(HistoryTabs).cycle(1)

    def action_history_prev(self) -> None:
        self.query_one(HistoryTabs).cycle(-1)

    def reload_profile(self) -> None:
        """Fetch the member again after the agent changed something (their own complaint,
        inquiry, callback or redemption shows in the tabs and the next best action)."""
        if self.profile is not None:
            self._reload(self.profile.member_id)

    @work(exclusive=True, exit_on_error=False, group="member-reload")
    async def _reload(self, member_id: int) -> None:
        result = await self.console.call_hub("member_profile", member_id=member_id)
        if result is None or not isinstance(result.get("profile"), dict):
            return
        profile = Profile.parse(result["profile"])
        if self.profile is not None and self.profile.member_id == profile.member_id:
            self.profile_reloaded(profile)

    def profile_reloaded(self, profile: Profile) -> None:
        self.set_profile(profile)

    # -- member actions ------------------------------------------------------------
    def action_fill(self) -> None:
        from agent_tui.dialogs.forms import FillDialog

        if self.profile is not None:
            self.app.push_screen(FillDialog(self.profile.fillable), self._fill_done)

    def _fill_done(self, result: dict[str, str] | None) -> None:
        if result and self.profile is not None:
            self._fill(self.profile.member_id, result)

    @work(exclusive=True, exit_on_error=False, group="member-fill")
    async def _fill(self, member_id: int, form: dict[str, str]) -> None:
        result = await self.console.call_hub("member_update", member_id=member_id, **form)
        if result is None or not isinstance(result.get("profile"), dict):
            return
        self.notify(f"Saved: {form['field']}", timeout=3)
        if self.profile is not None and self.profile.member_id == member_id:
            self.set_profile(Profile.parse(result["profile"]))

    def action_inquiry(self) -> None:
        from agent_tui.dialogs.forms import InquiryDialog

        self.app.push_screen(InquiryDialog(), self._inquiry_done)

    def _inquiry_done(self, result: dict[str, str] | None) -> None:
        if result and self.profile is not None:
            self._create(
                "inquiry_create", "Inquiry logged", member_id=self.profile.member_id, **result
            )

    def action_complaint(self) -> None:
        from agent_tui.dialogs.forms import ComplaintDialog

        self.app.push_screen(ComplaintDialog(), self._complaint_done)

    def _complaint_done(self, result: dict[str, str] | None) -> None:
        if result and self.profile is not None:
            self._create(
                "complaint_create", "Complaint logged", member_id=self.profile.member_id, **result
            )

    def action_callback(self) -> None:
        from agent_tui.dialogs.callback import CallbackDialog

        if self.profile is None:
            return
        self.app.push_screen(
            CallbackDialog(
                self.console.member_tz(self.profile.timezone),
                self.console.agent_tz,
                self.console.clock(),
            ),
            self._callback_done,
        )

    def _callback_done(self, result: tuple[dt.datetime, str] | None) -> None:
        if result and self.profile is not None:
            due, reason = result
            self._create(
                "callback_create",
                "Callback scheduled",
                member_id=self.profile.member_id,
                due_at=due.isoformat(),
                reason=reason,
            )

    @work(exit_on_error=False, group="member-create")
    async def _create(self, cmd: str, done: str, **args: Any) -> None:
        if await self.console.call_hub(cmd, **args) is not None:
            self.notify(done, timeout=3)
            self.reload_profile()

    def action_redeem(self) -> None:
        from agent_tui.dialogs.redeem import RedeemDialog

        if self.profile is None:
            return
        self.app.push_screen(
            RedeemDialog(self.profile.member_id, self.profile.points), self._redeemed
        )

    def _redeemed(self, result: dict[str, Any] | None) -> None:
        if not result or self.profile is None:
            return
        balance = int(result.get("balance_after", self.profile.points))
        entry = {
            "occurred_at": self.console.clock().isoformat(),
            "delta": -int(result.get("cost", 0)),
            "balance_after": balance,
            "reason": "redeem",
        }
        self.set_profile(self.profile.with_points(balance, entry))
        self.notify(f"Redeemed: new balance {balance:,} points", timeout=4)
        self.reload_profile()  # the next best action follows the new balance

    def action_dial(self) -> None:
        if self.profile is not None:
            self._dial(self.profile)

    @work(exclusive=True, exit_on_error=False, group="dial")
    async def _dial(self, profile: Profile) -> None:
        from agent_tui.model import ScreenPop

        result = await self.console.call_hub("dial", member_id=profile.member_id)
        if result is None:
            return
        call_id = str(result.get("call_id", ""))
        self.notify(f"Dialling {profile.name}…", timeout=3)
        self.console.show_pop(
            ScreenPop(
                call_id=call_id,
                queue="",
                caller_number=profile.phone_masked,
                caller_name=profile.name,
                kind="member",
                profile=profile,
                matches=(),
            )
        )
