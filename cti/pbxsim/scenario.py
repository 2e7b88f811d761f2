"""What the simulated PBX does: queues, agents, callers, members (a frozen dataclass).

Loadable from TOML (:func:`load_scenario`, :func:`scenario_from_dict`). Every
duration is in *simulated* seconds; ``time_scale`` says how many real seconds
one simulated second takes (1.0 = real time, 0.01 = a hundred times faster).
"""

from __future__ import annotations

import math
import random
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

OUTCOMES = (
    "answer",
    "voicemail",
    "noanswer",
    "busy",
    "congestion",
    "reject",
    "hangup",
    "userbusy",
    "nosuchexten",
)
"""Outcomes of a call to a member. ``answer``/``voicemail`` -> OriginateResponse
Reason 4; ``noanswer`` -> 3 (cause 19); ``busy`` -> 5 (Busy(), cause 17);
``congestion`` -> 8 (cause 34); ``reject`` (Hangup(21)), ``userbusy``
(Hangup(17)), ``hangup`` (Hangup()), ``nosuchexten`` -> 0, as on Asterisk 22."""


class ScenarioError(ValueError):
    """A scenario file or dict that does not make sense."""


@dataclass(frozen=True)
class Dist:
    """A duration distribution in simulated seconds (always sampled >= ``low``)."""

    kind: str = "fixed"  # fixed | normal | lognormal | uniform
    mean: float = 1.0
    sd: float = 0.0
    low: float = 0.0
    high: float = math.inf

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            value = self.mean
        elif self.kind == "normal":
            value = rng.gauss(self.mean, self.sd)
        elif self.kind == "lognormal":
            # parametrised by the distribution's own mean and sd (not mu/sigma)
            if self.mean <= 0:
                value = 0.0
            else:
                var = self.sd**2
                sigma2 = math.log(1 + var / self.mean**2)
                mu = math.log(self.mean) - sigma2 / 2
                value = rng.lognormvariate(mu, math.sqrt(sigma2))
        elif self.kind == "uniform":
            value = rng.uniform(self.mean - self.sd, self.mean + self.sd)
        else:
            raise ScenarioError(f"unknown distribution kind {self.kind!r}")
        return min(max(value, self.low), self.high)


def fixed(seconds: float) -> Dist:
    return Dist("fixed", seconds)


@dataclass(frozen=True)
class AgentSpec:
    """A simulated agent phone, queue interface ``Local/<ext>@agents/n``."""

    ext: str
    name: str = ""
    answer_prob: float = 1.0
    ring_time: Dist = field(default_factory=lambda: fixed(1.0))
    talk_time: Dist = field(default_factory=lambda: Dist("lognormal", 180.0, 90.0, 5.0))
    auto_answer: bool = True
    auto_hangup: bool = True
    caller_hangs_up_prob: float = 0.0
    """Probability that the caller, not the agent, ends the conversation."""

    @property
    def interface(self) -> str:
        return f"Local/{self.ext}@agents/n"

    @property
    def member_name(self) -> str:
        return self.name or f"Agent {self.ext}"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    exten: str = ""
    """Inbound number in context ``from-pstn`` that lands in this queue."""
    strategy: str = "ringall"  # ringall | linear
    timeout: float = 15.0
    retry: float = 1.0
    max_wait: float = 60.0
    members: tuple[str, ...] = ()
    """Agent extensions (static members, in order)."""
    after_agent: str = ""
    """Dialplan after ``Queue()`` when the agent hung up: ``"context,exten"`` (e.g.
    ``"survey,start"``) or an application (``"Wait(5)"``: the caller's channel stays up
    5 s so a Redirect into a post-call survey finds it). Empty: hang up at once."""


@dataclass(frozen=True)
class Caller:
    number: str
    name: str = ""


@dataclass(frozen=True)
class InboundSpec:
    rate_per_minute: float = 0.0
    """Poisson arrival rate (0 = no automatic arrivals)."""
    queue: str = "members"
    callers: tuple[Caller, ...] = ()
    patience: Dist = field(default_factory=lambda: Dist("lognormal", 90.0, 60.0, 3.0))
    """How long a caller waits in queue before abandoning."""


@dataclass(frozen=True)
class OutboundSpec:
    """How called members behave (Originate to a Local/<number>@<context>)."""

    p_answer: float = 0.6
    p_noanswer: float = 0.2
    p_busy: float = 0.1
    p_congestion: float = 0.02
    p_voicemail: float = 0.08
    ring_time: Dist = field(default_factory=lambda: Dist("lognormal", 8.0, 4.0, 1.0))
    talk_time: Dist = field(default_factory=lambda: Dist("lognormal", 60.0, 30.0, 5.0))
    """How long an answered member stays on a call nobody else ends."""
    voicemail_time: Dist = field(default_factory=lambda: fixed(20.0))
    amd_human_as_machine: float = 0.05
    """AMD() in the campaign context: share of people it calls MACHINE (false positives)."""
    amd_machine_as_human: float = 0.15
    """... and of answering machines it calls HUMAN."""
    amd_human_time: Dist = field(default_factory=lambda: Dist("lognormal", 1.6, 0.5, 0.8, 4.0))
    """Seconds AMD listens to a person's "hello" (then silence) before its verdict."""
    amd_machine_time: Dist = field(default_factory=lambda: Dist("lognormal", 3.2, 0.8, 1.5, 5.0))
    """... to a machine's greeting (long: ``greeting = 1500`` ms exceeded)."""


@dataclass(frozen=True)
class SurveySpec:
    """How members answer a FastAGI survey (per GET DATA / WAIT FOR DIGIT)."""

    p_hangup: float = 0.03
    p_silence: float = 0.05
    p_invalid: float = 0.03
    digits: tuple[str, ...] = ("1", "2", "3", "4", "5")
    """Keys pressed for one-digit questions (repeat a key to weight it)."""
    nps_digits: tuple[str, ...] = tuple(str(i) for i in range(11))
    """Answers to multi-digit (0-10) questions (repeat a value to weight it)."""
    invalid_keys: tuple[str, ...] = ("9", "*", "0")
    response_time: Dist = field(default_factory=lambda: Dist("lognormal", 1.5, 0.8, 0.3, 8.0))


@dataclass(frozen=True)
class NumberOverride:
    """Forced behaviour for one member number (tests, demos)."""

    outcome: str | None = None
    ring_time: float | None = None
    talk_time: float | None = None
    survey: tuple[str, ...] | None = None
    """Survey script: one token per question: digits (``"4"``, ``"10"``),
    ``"timeout"`` (silence) or ``"hangup"``; ``"early:<key>"`` presses the key during the
    next prompt played with escape digits (the intro), ``"early:<key>@<prompt>"`` only during
    that prompt; after the script runs out, the member hangs up."""


def _default_queues() -> tuple[QueueSpec, ...]:
    return (QueueSpec("members", exten="8000", members=("1001", "1002")),)


def _default_agents() -> tuple[AgentSpec, ...]:
    return (AgentSpec("1001"), AgentSpec("1002"))


@dataclass(frozen=True)
class Scenario:
    seed: int = 1
    time_scale: float = 1.0
    max_calls: int = 500
    """Concurrent call cap (like asterisk.conf ``maxcalls``)."""
    queues: tuple[QueueSpec, ...] = field(default_factory=_default_queues)
    agents: tuple[AgentSpec, ...] = field(default_factory=_default_agents)
    inbound: InboundSpec = field(default_factory=InboundSpec)
    outbound: OutboundSpec = field(default_factory=OutboundSpec)
    survey: SurveySpec = field(default_factory=SurveySpec)
    overrides: Mapping[str, NumberOverride] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ScenarioError("time_scale must be > 0")
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ScenarioError("duplicate queue name")
        exts = {a.ext for a in self.agents}
        for q in self.queues:
            if q.strategy not in ("ringall", "linear"):
                raise ScenarioError(f"queue {q.name}: unknown strategy {q.strategy!r}")
            for m in q.members:
                if m not in exts:
                    raise ScenarioError(f"queue {q.name}: member {m} is not an agent")
        for number, ov in self.overrides.items():
            if ov.outcome is not None and ov.outcome not in OUTCOMES:
                raise ScenarioError(f"override {number}: unknown outcome {ov.outcome!r}")
        if self.inbound.rate_per_minute and self.inbound.queue not in names:
            raise ScenarioError(f"inbound queue {self.inbound.queue!r} is not defined")

    def agent(self, ext: str) -> AgentSpec | None:
        for a in self.agents:
            if a.ext == ext:
                return a
        return None


# ---------------------------------------------------------------- loading


def _dist(value: Any, where: str) -> Dist:
    if isinstance(value, int | float):
        return fixed(float(value))
    if isinstance(value, Mapping):
        return Dist(**_known(Dist, value, where))
    raise ScenarioError(f"{where}: expected a number or a table")


def _known(cls: Any, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    allowed = {f.name for f in fields(cls)}
    unknown = set(data) - allowed
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    return dict(data)


def _build(cls: Any, data: Mapping[str, Any], where: str) -> Any:
    kwargs = _known(cls, data, where)
    dist_fields = {f.name for f in fields(cls) if str(f.type) == "Dist"}
    for key, value in list(kwargs.items()):
        if key in dist_fields:
            kwargs[key] = _dist(value, f"{where}.{key}")
        elif isinstance(value, list):
            kwargs[key] = tuple(value)
    return cls(**kwargs)


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Build a Scenario from plain data (the parsed TOML)."""
    kwargs = _known(Scenario, data, "scenario")
    try:
        if "queues" in kwargs:
            kwargs["queues"] = tuple(
                _build(QueueSpec, q, f"queues[{i}]") for i, q in enumerate(kwargs["queues"])
            )
        if "agents" in kwargs:
            kwargs["agents"] = tuple(
                _build(AgentSpec, a, f"agents[{i}]") for i, a in enumerate(kwargs["agents"])
            )
        if "inbound" in kwargs:
            inbound = dict(kwargs["inbound"])
            inbound["callers"] = [
                Caller(**_known(Caller, c, "inbound.callers")) for c in inbound.get("callers", [])
            ]
            kwargs["inbound"] = _build(InboundSpec, inbound, "inbound")
        if "outbound" in kwargs:
            kwargs["outbound"] = _build(OutboundSpec, kwargs["outbound"], "outbound")
        if "survey" in kwargs:
            kwargs["survey"] = _build(SurveySpec, kwargs["survey"], "survey")
        if "overrides" in kwargs:
            kwargs["overrides"] = {
                str(num): _build(NumberOverride, ov, f"overrides.{num}")
                for num, ov in kwargs["overrides"].items()
            }
        return Scenario(**kwargs)
    except TypeError as exc:
        raise ScenarioError(str(exc)) from exc


def load_scenario(path: str | Path) -> Scenario:
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: {exc}") from exc
    return scenario_from_dict(data)
