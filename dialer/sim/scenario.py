"""Simulation scenarios: TOML files with every key required, validated with clear errors.

Optional ``[[shift]]`` tables change the list's answer behaviour during the run: each has
``at_h`` (hours from the start) and ``answer_rate`` and/or ``machine_rate``, in force from then
on (until a later shift); several are allowed, in any order in the file.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any


class ScenarioError(ValueError):
    """A scenario file is missing a key, has an unknown key or a value out of range."""


@dataclass(frozen=True)
class Shift:
    """From ``at_h`` hours on, these rates replace the scenario's (``None``: unchanged)."""

    at_h: float
    answer_rate: float | None = None
    machine_rate: float | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    agents: int
    hours: float
    answer_rate: float
    """P(a live person answers a placed call) (before the ring timeout)."""
    machine_rate: float
    """P(an answering machine answers)."""
    amd_accuracy: float
    amd_delay_s: float
    ring_time_s: tuple[float, float]
    """Ring time before an answer, lognormal (mean, sd)."""
    talk_time_s: tuple[float, float]
    wrap_time_s: tuple[float, float]
    ring_timeout_s: float
    abandon_cap: float
    seed: int
    shifts: tuple[Shift, ...] = ()
    """Sorted by ``at_h``."""

    def rates_at(self, t_s: float) -> tuple[float, float]:
        """(answer_rate, machine_rate) in force ``t_s`` seconds after the start."""
        answer, machine = self.answer_rate, self.machine_rate
        for sh in self.shifts:
            if sh.at_h * 3600.0 > t_s:
                break
            if sh.answer_rate is not None:
                answer = sh.answer_rate
            if sh.machine_rate is not None:
                machine = sh.machine_rate
        return answer, machine

    def with_seed(self, seed: int) -> Scenario:
        return replace(self, seed=seed)

    @property
    def limit_talk_min_per_agent_hour(self) -> float:
        """An agent never idle: 60 x talk / (talk + wrap)."""
        talk, wrap = self.talk_time_s[0], self.wrap_time_s[0]
        return 60.0 * talk / (talk + wrap)


_KEYS = (
    "agents",
    "hours",
    "answer_rate",
    "machine_rate",
    "amd_accuracy",
    "amd_delay_s",
    "ring_time_s",
    "talk_time_s",
    "wrap_time_s",
    "ring_timeout_s",
    "abandon_cap",
    "seed",
)


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _pair(where: str, key: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ScenarioError(f"{where}: {key} must be [mean, sd], got {value!r}")
    mean, sd = (_number(where, key, v) for v in value)
    if mean <= 0 or sd < 0:
        raise ScenarioError(f"{where}: {key} needs mean > 0 and sd >= 0, got {value!r}")
    return mean, sd


def scenario_from_mapping(data: dict[str, Any], name: str, where: str | None = None) -> Scenario:
    """Validate a parsed TOML table; ``where`` names the source in error messages."""
    where = where or name
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise ScenarioError(f"{where}: missing key(s): {', '.join(missing)}")
    unknown = sorted(set(data) - set(_KEYS) - {"name", "shift"})
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s): {', '.join(unknown)}")
    agents = data["agents"]
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 1:
        raise ScenarioError(f"{where}: agents must be an integer >= 1, got {agents!r}")
    seed = data["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"{where}: seed must be an integer, got {seed!r}")
    hours = _number(where, "hours", data["hours"])
    if not 0 < hours <= 24:
        raise ScenarioError(f"{where}: hours must be in (0, 24], got {hours}")
    probs = {}
    for key in ("answer_rate", "machine_rate", "amd_accuracy", "abandon_cap"):
        v = _number(where, key, data[key])
        if not 0.0 <= v <= 1.0:
            raise ScenarioError(f"{where}: {key} must be in [0, 1], got {v}")
        probs[key] = v
    if probs["answer_rate"] + probs["machine_rate"] > 1.0:
        raise ScenarioError(f"{where}: answer_rate + machine_rate must not exceed 1")
    if probs["abandon_cap"] <= 0:
        raise ScenarioError(f"{where}: abandon_cap must be > 0")
    amd_delay = _number(where, "amd_delay_s", data["amd_delay_s"])
    if not 0 <= amd_delay <= 10:
        raise ScenarioError(f"{where}: amd_delay_s must be in [0, 10], got {amd_delay}")
    timeout = _number(where, "ring_timeout_s", data["ring_timeout_s"])
    if not 15 <= timeout <= 120:
        raise ScenarioError(
            f"{where}: ring_timeout_s must be in [15, 120] (the law wants >= 15 s), got {timeout}"
        )
    shifts = _shifts(where, data.get("shift", []), hours, probs)
    return Scenario(
        name=str(data.get("name", name)),
        agents=agents,
        hours=hours,
        answer_rate=probs["answer_rate"],
        machine_rate=probs["machine_rate"],
        amd_accuracy=probs["amd_accuracy"],
        amd_delay_s=amd_delay,
        ring_time_s=_pair(where, "ring_time_s", data["ring_time_s"]),
        talk_time_s=_pair(where, "talk_time_s", data["talk_time_s"]),
        wrap_time_s=_pair(where, "wrap_time_s", data["wrap_time_s"]),
        ring_timeout_s=timeout,
        abandon_cap=probs["abandon_cap"],
        seed=seed,
        shifts=shifts,
    )


def _shifts(where: str, raw: Any, hours: float, probs: dict[str, float]) -> tuple[Shift, ...]:
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ScenarioError(f"{where}: shift must be [[shift]] tables")
    out: list[Shift] = []
    for i, table in enumerate(raw, 1):
        at = f"{where}: shift {i}"
        unknown = sorted(set(table) - {"at_h", "answer_rate", "machine_rate"})
        if unknown:
            raise ScenarioError(f"{at}: unknown key(s): {', '.join(unknown)}")
        if "at_h" not in table:
            raise ScenarioError(f"{at}: missing key at_h")
        at_h = _number(at, "at_h", table["at_h"])
        if not 0 <= at_h < hours:
            raise ScenarioError(f"{at}: at_h must be in [0, hours), got {at_h}")
        if "answer_rate" not in table and "machine_rate" not in table:
            raise ScenarioError(f"{at}: needs answer_rate and/or machine_rate")
        rates: dict[str, float | None] = {}
        for key in ("answer_rate", "machine_rate"):
            if key in table:
                v = _number(at, key, table[key])
                if not 0.0 <= v <= 1.0:
                    raise ScenarioError(f"{at}: {key} must be in [0, 1], got {v}")
                rates[key] = v
            else:
                rates[key] = None
        out.append(Shift(at_h, rates["answer_rate"], rates["machine_rate"]))
    out.sort(key=lambda sh: sh.at_h)
    if len({sh.at_h for sh in out}) != len(out):
        raise ScenarioError(f"{where}: two shifts at the same at_h")
    answer, machine = probs["answer_rate"], probs["machine_rate"]
    for sh in out:
        answer = sh.answer_rate if sh.answer_rate is not None else answer
        machine = sh.machine_rate if sh.machine_rate is not None else machine
        if answer + machine > 1.0:
            raise ScenarioError(
                f"{where}: from {sh.at_h} h answer_rate + machine_rate would exceed 1"
            )
    return tuple(out)


def load_scenario_file(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from exc
    return scenario_from_mapping(data, p.stem, str(p))


def scenario_names() -> list[str]:
    files = resources.files("dialer.sim").joinpath("scenarios")
    return sorted(f.name[:-5] for f in files.iterdir() if f.name.endswith(".toml"))


def named_scenario(name: str) -> Scenario:
    """One of the scenarios shipped in ``dialer/sim/scenarios/``."""
    if name not in scenario_names():
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
    res = resources.files("dialer.sim").joinpath("scenarios", f"{name}.toml")
    data = tomllib.loads(res.read_text(encoding="utf-8"))
    return scenario_from_mapping(data, name, f"scenario {name}")
