"""A member's profile opened from search (not in a call): history, points, click-to-dial."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult

from agent_tui.model import Profile
from agent_tui.screens.member import MemberScreen
from agent_tui.widgets.footer import FittingFooter


class ProfileScreen(MemberScreen):
    def __init__(self, member_id: int, profile: Profile | None = None) -> None:
        super().__init__(profile)
        self.member_id = member_id

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield from self.compose_member()
        yield self.history()
        yield FittingFooter(compact=True)

    def on_mount(self) -> None:
        self.set_profile(self.profile)
        if self.profile is None:
            self._load()

    @work(exclusive=True, exit_on_error=False, group="profile")
    async def _load(self) -> None:
        result = await self.console.call_hub("member_profile", member_id=self.member_id)
        if result is not None and isinstance(result.get("profile"), dict):
            self.set_profile(Profile.parse(result["profile"]))
