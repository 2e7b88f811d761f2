"""The hub's own parameters (plain values; ``memberline`` maps its config onto them)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HubSettings:
    bind: str = "127.0.0.1"
    port: int = 7070
    """0 = an ephemeral port (tests); the bound port is ``HubServer.port``."""
    tls_cert: str = ""
    tls_key: str = ""
    max_message_bytes: int = 1_048_576
    login_attempts_per_minute: int = 5
    """Failed logins per agent account per minute before that account is locked."""
    login_attempts_per_address_per_minute: int = 30
    """Failed logins from one address per minute before that address is locked (larger than
    the account limit: many agents log in from one SSH jump host)."""
    max_pending_requests: int = 64
    """Per console connection; past it requests are refused with ``rate_limited``."""
    max_backlog_bytes: int = 16 * 1024 * 1024
    """Bytes queued for a console that does not read before the hub drops it."""
    server_name: str = "memberline-hub/0.1"
    hub_name: str = "hub-1"
    """This hub's name (``serve --hub-name``). Scale-out: hubs sharing one database each
    re-apply only the desks (queue logins, pauses) of agents last seated at them, on their
    own PBX; another hub's agents are not added to this PBX's queues."""
    journal_path: str = ""
    """The call-row/audit write-ahead journal (:mod:`cti.hub.persist`); empty = beside a
    SQLite database, else under ``~/.local/state/memberline``."""

    queue: str = "members"
    agent_interface: str = "Local/{extension}@agents/n"
    agent_context: str = "agents"
    outbound_context: str = "outbound"
    action_timeout_s: float = 5.0
    originate_timeout_ms: int = 30_000
    default_region: str = "CN"
    maintainer_queue: str = "maintainers"
    """Every agent who joins the queue also joins this one with their agent id as penalty, so
    ``Queue(maintainers)`` limited to one penalty rings one person: a known caller's
    maintaining agent first (``route-inbound``). Empty: no maintainer-first routing."""
    maintainer_ring_s: float = 15.0
    """How long the maintaining agent rings before the call goes to the queue."""

    pause_reasons: tuple[str, ...] = ("break", "lunch", "training", "meeting", "admin")
    dispositions: tuple[tuple[str, str], ...] = (
        ("s", "satisfied"),
        ("f", "follow-up"),
        ("c", "complaint"),
        ("i", "inquiry"),
        ("n", "not-interested"),
        ("w", "wrong-number"),
        ("v", "voicemail"),
        ("d", "do-not-call"),
    )
    winback_reasons: tuple[tuple[str, str, str], ...] = (
        ("quality", "Product quality", "商品质量"),
        ("service", "Service", "服务"),
        ("price", "Price", "价格"),
        ("moved", "Moved away", "搬家"),
        ("elsewhere", "Buys elsewhere", "在别处购买"),
        ("busy", "Travelling / busy", "出差 / 忙"),
        ("no-need", "No need now", "暂无需要"),
        ("other", "Other (write a note)", "其他（请写备注）"),
    )
    """(code, English, Chinese) reasons an answered win-back call's wrap-up must carry."""
    reasons_needing_note: tuple[str, ...] = ("other",)
    abandon_cap: float = 0.03
    wrapup_pause: bool = True
    """Pause an agent (reason ``wrap-up``) in the queue when their call ends, until they
    send ``wrapup`` or the tracker's wrap-up timeout passes — so the queue does not ring a
    person who is still writing notes. Off for PBXs that enforce ``wrapuptime`` themselves."""

    wrapup_max_s: float = 60.0
    """After-call work: how long the hub keeps an agent paused (reason ``wrap-up``) waiting
    for the disposition before making them available again; 0 = until it is saved. A
    campaign's ``settings.wrapup_max_s`` and ``wrapup_max_by_queue`` override it."""
    wrapup_max_by_queue: tuple[tuple[str, float], ...] = ()
    shift_s: float = 8 * 3600.0
    """An unfinished call (no disposition) that ended longer ago than this is flagged as
    from an earlier shift on the supervisor's screen."""

    postcall_survey_queues: tuple[str, ...] = ()
    """Queues whose callers go to the post-call survey when the agent hangs up."""
    survey_context: str = "survey"
    survey_exten: str = "start"
    survey_name: str = "satisfaction"
    transfer_context: str = "agents"
    """Where a blind transfer sends the member (``Redirect`` to ``<target>@<transfer_context>``)."""

    wallboard_period_s: float = 1.0
    wallboard_window_s: float = 3600.0
    """Rolling window for abandon/contact rates and the sparkline history."""
    grant_ttl_s: float = 4 * 3600.0
    """How long a member offered to an agent by a call stays in that agent's reach."""
    extra: dict[str, str] = field(default_factory=dict)

    def wrapup_max_for(self, queue: str | None) -> float:
        for q, limit in self.wrapup_max_by_queue:
            if q == queue:
                return limit
        return self.wrapup_max_s

    def interface_for(self, extension: str) -> str:
        return self.agent_interface.format(extension=extension)

    @property
    def disposition_codes(self) -> frozenset[str]:
        return frozenset(code for _, code in self.dispositions)
