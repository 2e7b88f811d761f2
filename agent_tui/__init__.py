"""The agent / supervisor console (Textual): ``memberline console --hub HOST:PORT``.

Talks only to the hub, through :mod:`cti.hubproto` (no database, no AMI).

Layout: :mod:`agent_tui.app` (connection worker, push routing), ``screens/`` (login,
home + call view, profile, wrap-up, search, supervisor screens), ``dialogs/``
(``ModalScreen[T]`` forms), ``widgets/`` (status bar and banner, member profile, charts),
:mod:`agent_tui.model` and :mod:`agent_tui.callbook` (pure data), ``theme.tcss`` (the one
theme, theme variables only).

Keys (no mouse needed; the footer shows, most important first, those that apply and fit
the width -- then ``f1 Keys``, which lists every key of the screen):

- home: p pause (reason picker), u unpause, l / o queue in / out, s or / search,
  a current call; supervisors also m maintainers, c campaigns, w wallboard, v surveys
- call (pop): F8 hang up, F9 wrap-up, F6 transfer, F3 complaint, F2 inquiry,
  F4 callback, F5 redeem points, F7 dial, ctrl+n / ctrl+p history tabs (their list takes
  the arrow keys), ctrl+o back to the notes, Esc hide the call view
- profile (from search): the member keys above and ctrl+n / ctrl+p, Esc back
- wrap-up: the configured disposition hotkeys (or Enter), F4 callback
- search: Enter search / open profile, F7 dial, ctrl+f search box, Esc back
- everywhere: F1 every key, ctrl+q quit, ctrl+t light/dark theme; dialogs: ctrl+s save,
  Esc cancel
"""
