"""The one configuration loader.

Configuration comes from, in increasing priority:

1. built-in defaults (the dataclasses below; what ``memberline demo`` runs on),
2. a TOML file (``--config memberline.toml``; see ``docs/memberline.example.toml``),
3. environment variables for secrets and the database URL
   (``MEMBERLINE_DB``, ``MEMBERLINE_AMI_SECRET``, ``MEMBERLINE_TWILIO_AUTH_TOKEN``,
   ``MEMBERLINE_SMTP_PASSWORD``, ``MEMBERLINE_UNSUBSCRIBE_SECRET``), and ``${NAME}``
   references inside string values,
4. command-line flags such as ``--db`` (applied by the CLI with :func:`dataclasses.replace`).

Every section is a frozen dataclass, so a loaded config is a plain value that can be
passed around and compared. Unknown keys are an error naming the key (a typo in a
production config must not be silently ignored). Secrets are wrapped in :class:`Secret`,
whose ``repr``/``str`` never shows the value, so a logged config cannot leak them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from cti.hub.settings import HubSettings

__all__ = [
    "AmiConfig",
    "CallingConfig",
    "CareConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "HubConfig",
    "MessagingConfig",
    "Secret",
    "load_config",
]


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key."""


class Secret:
    """A string that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_HUB = HubSettings()
"""The hub's own defaults: every setting the hub shares with this file (same name) takes its
default from :class:`cti.hub.settings.HubSettings`, and :func:`memberline.stack.hub_settings`
maps the loaded values back by name, so the two are written once."""


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///memberline.db"
    """Any SQLAlchemy URL. SQLite file by default; ``postgresql+psycopg://…`` in production."""
    default_region: str = _HUB.default_region
    """Region used to parse national-format phone numbers (phonenumbers region code)."""


@dataclass(frozen=True)
class AmiConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "memberline"
    secret: Secret = field(default_factory=lambda: Secret(""))
    action_timeout_s: float = _HUB.action_timeout_s
    ping_interval_s: float = 10.0
    reconnect_max_s: float = 60.0
    queue: str = _HUB.queue
    """The inbound queue agents log in to."""
    agent_interface: str = _HUB.agent_interface
    """How an agent's extension becomes a queue-member interface."""
    agent_context: str = _HUB.agent_context
    """Dialplan context used to ring an agent first for click-to-dial."""
    outbound_context: str = _HUB.outbound_context
    """Dialplan context for member legs of click-to-dial and campaigns."""
    trunk: str = "Local/{number}@members-out/n"
    """Dial string template for calling a member's number."""
    transfer_context: str = _HUB.transfer_context
    """Dialplan context a blind transfer's target extension is dialled in."""
    campaign_context: str = "campaign"
    """Where answered dialer calls go: ``Queue(<queue>,,,,2)`` then the safe-harbour message."""
    survey_context: str = "surveys"
    """Where answered IVR-campaign calls go: exten = survey name, runs the survey FastAGI."""
    maintainer_queue: str = _HUB.maintainer_queue
    """Queue agents also join with their id as penalty: a known caller's maintaining agent
    rings there first (docs/asterisk). Empty: no maintainer-first routing."""
    maintainer_ring_s: float = _HUB.maintainer_ring_s
    """Seconds the maintaining agent rings before the call goes to the queue."""


@dataclass(frozen=True)
class HubConfig:
    bind: str = _HUB.bind
    port: int = _HUB.port
    tls_cert: str = _HUB.tls_cert
    tls_key: str = _HUB.tls_key
    max_message_bytes: int = _HUB.max_message_bytes
    login_attempts_per_minute: int = _HUB.login_attempts_per_minute
    """Failed logins per agent account per minute before that account is locked."""
    login_attempts_per_address_per_minute: int = _HUB.login_attempts_per_address_per_minute
    """Failed logins from one address per minute before the address is locked."""


@dataclass(frozen=True)
class CallingConfig:
    window_start: str = "09:00"
    window_end: str = "21:00"
    abandon_cap: float = _HUB.abandon_cap
    safe_harbour_prompt: str = "memberline/safe-harbour"
    """The prompt (in Asterisk's sounds folder, no extension) played to an abandoned campaign
    call: the business name and a callback number (``memberline prompts render``)."""
    business_name: str = "Memberline"
    """Named in the safe-harbour message (the law asks for the caller's name)."""
    business_name_zh: str = "会员服务中心"
    callback_number: str = "4000"
    """The number the safe-harbour message gives members to call back."""
    pause_reasons: tuple[str, ...] = _HUB.pause_reasons
    dispositions: tuple[tuple[str, str], ...] = _HUB.dispositions
    """(hotkey, code) pairs shown in the console's disposition picker. Two codes act as
    well as record: ``do-not-call`` puts the member on the do-not-call list and
    ``wrong-number`` flags the call's number invalid (crm_bridge.optout), both audited."""
    max_attempts: int = 3
    retry_busy_s: int = 600
    retry_no_answer_s: int = 7200
    retry_machine_s: int = 86400
    retry_failed_s: int = 86400
    no_redial_after_abandon_s: int = 72 * 3600
    max_attempts_per_member_per_day: int = 2
    postcall_survey_queues: tuple[str, ...] = _HUB.postcall_survey_queues
    """Queues whose callers are transferred into the satisfaction survey when the agent hangs up."""
    wrapup_max_s: float = _HUB.wrapup_max_s
    """After-call work: the hub keeps an agent paused (reason ``wrap-up``) this long at most
    waiting for the disposition, then makes them available and lists the call as unfinished;
    0 = until the disposition is saved. A campaign's ``settings.wrapup_max_s`` overrides it."""
    wrapup_max_by_queue: tuple[tuple[str, float], ...] = _HUB.wrapup_max_by_queue
    """Per-queue maxima, e.g. ``[["members", 90], ["support", 0]]``."""
    shift_hours: float = 8.0
    """An unfinished call older than this is flagged on the supervisor's screen."""


@dataclass(frozen=True)
class MessagingConfig:
    quiet_start: str = "21:00"
    quiet_end: str = "09:00"
    daily_cap_per_member: int = 2
    sms_from: str = "+15005550006"
    email_from: str = "Memberline <care@memberline.example>"
    twilio_account_sid: str = ""
    twilio_auth_token: Secret = field(default_factory=lambda: Secret(""))
    twilio_base_url: str = ""
    """Empty = api.twilio.com; set to a loopback URL for the local SMS sink."""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str = ""
    smtp_password: Secret = field(default_factory=lambda: Secret(""))
    smtp_tls: str = "none"
    """none | starttls | implicit"""
    smtp_timeout_s: float = 10.0
    webhook_bind: str = "127.0.0.1"
    webhook_port: int = 8088
    public_url: str = "http://127.0.0.1:8088"
    """The URL Twilio calls us on; signatures are validated against it."""
    unsubscribe_secret: Secret = field(default_factory=lambda: Secret(""))
    """HMAC key of the emails' unsubscribe links (MEMBERLINE_UNSUBSCRIBE_SECRET). Empty: a
    key derived from the database URL, fine on one machine; set it wherever public_url is
    reachable from outside (check-config says so). Changing it breaks links already sent."""


@dataclass(frozen=True)
class CareConfig:
    """The member-care plan: win-back reasons, regular-member lists, greetings."""

    winback_reasons: tuple[tuple[str, str, str], ...] = _HUB.winback_reasons
    """(code, English label, Chinese label): the reasons a win-back call ends with. The
    console asks for one at the wrap-up of an answered win-back call; the hub refuses the
    wrap-up without one. Codes listed in ``reasons_needing_note`` also need the notes."""
    reasons_needing_note: tuple[str, ...] = _HUB.reasons_needing_note
    spend_decline_share: float = 0.4
    """``spend_decline`` lists members whose purchase count or amount over the last 90 days
    is down by at least this share against their own average 90 days of the 12 months before."""
    greeting_country: str = "CN"
    """Holiday calendar of the ``holidays`` library (ISO country code)."""
    greeting_holidays: tuple[str, ...] = (
        "Chinese New Year (Spring Festival)",
        "Mid-Autumn Festival",
    )
    """Holidays greeted, by their English name in the ``holidays`` calendar; each is greeted
    on its first day of the year."""
    greeting_catch_up_days: int = 2
    """A run on day D also queues occasions of the previous N days not yet greeted (the
    service was down): each is still sent once."""
    greetings_in_serve: bool = True
    """``serve`` queues the day's greetings itself (off: run ``memberline greetings run``
    from cron instead)."""
    greeting_run_at: str = "08:00"
    """When ``serve`` runs the day's greetings (hub host's local time; the outbox holds the
    messages until the member's quiet hours end) and refreshes the RFM scores."""
    rfm_in_serve: bool = True
    """``serve`` refreshes the RFM scores once a day and keeps the monthly snapshots the RFM
    report compares against (off: run ``memberline report rfm --refresh`` from cron)."""


@dataclass(frozen=True)
class AgiConfig:
    bind: str = "127.0.0.1"
    port: int = 4573
    hotline_locale: str = "zh-CN"
    """Language of the self-service hotline until the caller is identified (zh-CN or en)."""


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    ami: AmiConfig = field(default_factory=AmiConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    agi: AgiConfig = field(default_factory=AgiConfig)
    calling: CallingConfig = field(default_factory=CallingConfig)
    messaging: MessagingConfig = field(default_factory=MessagingConfig)
    care: CareConfig = field(default_factory=CareConfig)


_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)\}")
_ENV_OVERRIDES: dict[tuple[str, str], str] = {
    ("database", "url"): "MEMBERLINE_DB",
    ("ami", "secret"): "MEMBERLINE_AMI_SECRET",
    ("messaging", "twilio_auth_token"): "MEMBERLINE_TWILIO_AUTH_TOKEN",
    ("messaging", "smtp_password"): "MEMBERLINE_SMTP_PASSWORD",
    ("messaging", "unsubscribe_secret"): "MEMBERLINE_UNSUBSCRIBE_SECRET",
}

T = TypeVar("T")


def _expand(value: str, where: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return env[name]

    return _ENV_REF.sub(sub, value)


def _coerce(tp: Any, value: Any, where: str, env: dict[str, str]) -> Any:
    origin = get_origin(tp)
    if tp is Secret:
        if isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string")
        return Secret(_expand(value, where, env))
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
        return _expand(value, where, env)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number")
        return float(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]", env) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} items")
        return tuple(
            _coerce(a, v, f"{where}[{i}]", env)
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table")
        return _build(tp, value, where, env)  # type: ignore[arg-type]
    raise ConfigError(f"{where}: unsupported type {tp!r}")


def _build(cls: type[T], data: dict[str, Any], where: str, env: dict[str, str]) -> T:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {', '.join(unknown)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k, env) for k, v in data.items()}
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    for where, value in (
        ("calling.window_start", cfg.calling.window_start),
        ("calling.window_end", cfg.calling.window_end),
        ("messaging.quiet_start", cfg.messaging.quiet_start),
        ("messaging.quiet_end", cfg.messaging.quiet_end),
        ("care.greeting_run_at", cfg.care.greeting_run_at),
    ):
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ConfigError(f"{where}: expected HH:MM, got {value!r}")
    if cfg.calling.wrapup_max_s < 0 or any(m < 0 for _, m in cfg.calling.wrapup_max_by_queue):
        raise ConfigError("calling.wrapup_max_s: seconds >= 0 (0 = until the disposition is saved)")
    if cfg.calling.shift_hours <= 0:
        raise ConfigError("calling.shift_hours: expected hours > 0")
    if not 0.0 < cfg.calling.abandon_cap <= 0.5:
        raise ConfigError("calling.abandon_cap: expected a fraction such as 0.03")
    if cfg.messaging.smtp_tls not in ("none", "starttls", "implicit"):
        raise ConfigError("messaging.smtp_tls: expected none, starttls or implicit")
    if bool(cfg.hub.tls_cert) != bool(cfg.hub.tls_key):
        raise ConfigError("hub: tls_cert and tls_key must be given together")
    if cfg.hub.login_attempts_per_minute < 1 or cfg.hub.login_attempts_per_address_per_minute < 1:
        raise ConfigError("hub: login_attempts_per_minute limits must be at least 1")
    codes = [c for c, _, _ in cfg.care.winback_reasons]
    if (
        not codes
        or len(set(codes)) != len(codes)
        or not all(re.fullmatch(r"[a-z0-9_-]{1,32}", c) for c in codes)
    ):
        raise ConfigError("care.winback_reasons: expected unique codes of a-z, 0-9, - or _")
    if not set(cfg.care.reasons_needing_note) <= set(codes):
        raise ConfigError("care.reasons_needing_note: every code must be a winback reason")
    if not 0.0 < cfg.ami.maintainer_ring_s <= 120.0:
        raise ConfigError("ami.maintainer_ring_s: expected seconds in (0, 120]")
    if cfg.agi.hotline_locale not in ("zh-CN", "zh-TW", "en"):
        raise ConfigError("agi.hotline_locale: expected zh-CN, zh-TW or en")
    if not 0.0 < cfg.care.spend_decline_share < 1.0:
        raise ConfigError("care.spend_decline_share: expected a fraction such as 0.4")
    if not 0 <= cfg.care.greeting_catch_up_days <= 31:
        raise ConfigError("care.greeting_catch_up_days: expected 0-31")
    hotkeys = [k for k, _ in cfg.calling.dispositions]
    if len(set(hotkeys)) != len(hotkeys):
        raise ConfigError("calling.dispositions: hotkeys must be unique")


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Load defaults, then ``path`` (TOML) if given, then environment overrides."""
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such configuration file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    for (section, key), var in _ENV_OVERRIDES.items():
        if var in env:
            data.setdefault(section, {})[key] = env[var]
    cfg = _build(Config, data, "", env)
    _validate(cfg)
    return cfg


def _toml_value(value: Any) -> str:
    if isinstance(value, Secret):
        return '""  # set through the environment, see the header'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v).split("  #")[0] for v in value) + "]"
    raise TypeError(type(value))


def render_example() -> str:
    """The example configuration (docs/memberline.example.toml): every key with its default."""
    lines = [
        "# Memberline configuration: every key with its default value.",
        "# Secrets never go in this file: set MEMBERLINE_AMI_SECRET, MEMBERLINE_TWILIO_AUTH_TOKEN,",
        "# MEMBERLINE_SMTP_PASSWORD, MEMBERLINE_UNSUBSCRIBE_SECRET (or write",
        '# "${SOME_ENV_VAR}" as a value). MEMBERLINE_DB or',
        "# --db override database.url. Generated by `python -m memberline.config`.",
    ]
    cfg = Config()
    for section in dataclasses.fields(cfg):
        lines.append("")
        lines.append(f"[{section.name}]")
        sub = getattr(cfg, section.name)
        for f in dataclasses.fields(sub):
            lines.append(f"{f.name} = {_toml_value(getattr(sub, f.name))}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_example(), end="")
