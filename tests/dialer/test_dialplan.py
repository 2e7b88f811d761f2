"""The shipped Asterisk configuration (docs/asterisk/) holds everything Memberline uses.

Every context and extension Memberline originates into or redirects to (with the default
configuration), every prompt the dialplan plays (rendered by ``memberline prompts
render``), every queue, and the AMI user's rights for every action and event class it
needs; and the PBX simulator runs the same contexts with the same 2-second rule.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cti.hub.settings import HubSettings
from cti.pbxsim import originate as sim_originate
from dialer.runner import RunnerSettings
from memberline.config import Config
from surveys.definitions import builtin_names

ROOT = Path(__file__).resolve().parents[2]
ASTERISK = ROOT / "docs" / "asterisk"

Dialplan = dict[str, dict[str, list[tuple[str, str]]]]
"""context -> extension -> [(application, data)] in priority order."""


def parse_extensions(text: str) -> Dialplan:
    plan: Dialplan = {}
    context = ""
    last = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            context = m.group(1)
            plan.setdefault(context, {})
            continue
        if m := re.fullmatch(r"(exten|same)\s*=>\s*(.*)", line):
            kind, rest = m.groups()
            if kind == "exten":
                last, _, rest = rest.partition(",")
                _prio, _, app = rest.partition(",")
            else:
                _prio, _, app = rest.partition(",")
            name, _, data = app.partition("(")
            plan[context].setdefault(last, []).append((name.strip(), data.rstrip(")")))
    return plan


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    body = pattern[1:]
    while i < len(body):
        ch = body[i]
        if ch == "X":
            out.append("[0-9]")
        elif ch == "Z":
            out.append("[1-9]")
        elif ch == "N":
            out.append("[2-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            j = body.index("]", i)
            out.append(f"[{body[i + 1 : j]}]")
            i = j
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


def match(plan: Dialplan, context: str, exten: str) -> list[tuple[str, str]]:
    """The extension Asterisk runs for ``exten`` in ``context`` (exact before pattern)."""
    assert context in plan, f"context [{context}] is not in extensions.conf"
    extens = plan[context]
    if exten in extens:
        return extens[exten]
    for name, steps in extens.items():
        if name.startswith("_") and _pattern_regex(name).fullmatch(exten):
            return steps
    raise AssertionError(f"no extension {exten!r} in [{context}]")


@pytest.fixture(scope="module")
def plan() -> Dialplan:
    return parse_extensions((ASTERISK / "extensions.conf").read_text(encoding="utf-8"))


def apps(steps: list[tuple[str, str]]) -> list[str]:
    return [a for a, _ in steps]


def test_campaign_calls_have_the_two_second_rule_and_the_safe_harbour(plan: Dialplan) -> None:
    cfg, runner = Config(), RunnerSettings()
    steps = match(plan, cfg.ami.campaign_context, cfg.ami.queue)
    queue = next(d for a, d in steps if a == "Queue")
    assert queue.split(",")[4] == f"{runner.safe_harbour_s:g}"
    after = apps(steps)[apps(steps).index("Queue") + 1 :]
    assert after[0] == "Playback"
    played = [d for a, d in steps if a == "Playback"]
    assert played == [cfg.calling.safe_harbour_prompt]
    assert "AMD" in apps(steps)  # AMD when the runner asks for it (MEMBERLINE_AMD=1)


@pytest.mark.parametrize("context", ["campaign", "surveys"])
def test_failed_originates_run_a_failed_extension_that_opens_no_survey(
    plan: Dialplan, context: str
) -> None:
    steps = match(plan, context, "failed")
    assert "failed" in plan[context]  # exact: a pattern would also match "failed"
    assert "AGI" not in apps(steps) and "Queue" not in apps(steps)


@pytest.mark.parametrize("survey", builtin_names())
def test_every_builtin_survey_runs_the_survey_fastagi(plan: Dialplan, survey: str) -> None:
    steps = match(plan, Config().ami.survey_context, survey)
    agi = next(d for a, d in steps if a == "AGI")
    assert agi.endswith("/survey?name=${EXTEN}")


def test_hub_and_click_to_dial_targets_exist(plan: Dialplan) -> None:
    cfg, hub = Config(), HubSettings()
    number = "+8613900000001"
    assert "Queue" in apps(match(plan, "from-pstn", "8000"))
    # queue members and click-to-dial's first leg: Local/<ext>@agents/n
    iface = cfg.ami.agent_interface.format(extension="1001")
    ctx, exten = iface.removeprefix("Local/").removesuffix("/n").split("@")[::-1]
    assert "Dial" in apps(match(plan, ctx, exten))
    assert "Dial" in apps(match(plan, cfg.ami.outbound_context, number))
    assert "Dial" in apps(match(plan, cfg.ami.transfer_context, "1002"))
    trunk = cfg.ami.trunk.format(number=number)
    ctx = trunk.split("@")[1].removesuffix("/n")
    assert "Dial" in apps(match(plan, ctx, number))
    assert "AGI" in apps(match(plan, hub.survey_context, hub.survey_exten))


def test_queues_exist() -> None:
    text = (ASTERISK / "queues.conf").read_text(encoding="utf-8")
    queues = set(re.findall(r"^\[([^\]]+)\]", text, re.M)) - {"general"}
    assert {Config().ami.queue, "maintainers"} <= queues


ACTION_CLASSES = {
    # action: classes any of which allows it (Asterisk 22 manager action authority)
    "Originate": {"originate"},
    "Redirect": {"call"},
    "Setvar": {"call"},
    "Hangup": {"call", "system"},
    "QueueAdd": {"agent"},
    "QueueRemove": {"agent"},
    "QueuePause": {"agent"},
    "CoreShowChannels": {"system", "reporting"},
}


def test_manager_user_is_least_privilege_and_enough() -> None:
    text = (ASTERISK / "manager.conf").read_text(encoding="utf-8")
    user = text.split("[memberline]", 1)[1]
    fields = dict(
        (k.strip(), v.split(";")[0].strip())
        for k, _, v in (line.partition("=") for line in user.splitlines())
        if v and not k.strip().startswith(";")
    )
    read = set(fields["read"].split(","))
    write = set(fields["write"].split(","))
    for action, classes in ACTION_CLASSES.items():
        assert write & classes, f"{action} needs write={'|'.join(sorted(classes))}"
    # events: FullyBooted/Shutdown (system), channels (call), queues (agent), Newexten and
    # VarSet (dialplan: the ledger checks the safe harbour and reads AMDSTATUS)
    assert {"system", "call", "agent", "dialplan"} <= read
    assert not write & {"system", "command", "config", "all"}
    assert fields["permit"].startswith("127.0.0.1")


def test_pbx_simulator_runs_the_shipped_campaign_context(plan: Dialplan) -> None:
    steps = match(plan, "campaign", "members")
    queue = next(d for a, d in steps if a == "Queue")
    assert float(queue.split(",")[4]) == sim_originate.SAFE_HARBOUR_S
    assert [d for a, d in steps if a == "Playback"] == [sim_originate.SAFE_HARBOUR_PROMPT]
    # a failed Originate runs `failed` in the same contexts as the shipped dialplan
    shipped_failed = {ctx for ctx, extens in plan.items() if "failed" in extens}
    assert shipped_failed == sim_originate.FAILED_EXTEN_CONTEXTS
    # every context the simulator resolves for Memberline is shipped
    for context, exten in [
        ("campaign", "members"),
        ("surveys", "satisfaction"),
        ("survey", "start"),
        ("members-out", "+8613900000001"),
        ("outbound", "+8613900000001"),
    ]:
        match(plan, context, exten)


@pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng/sox missing"
)
def test_prompts_render_covers_every_prompt_played(plan: Dialplan, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "memberline", "prompts", "render", "--sounds-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    played = {
        d
        for ctx in plan.values()
        for ss in ctx.values()
        for a, d in ss
        if a in ("Playback", "Background")
    }
    assert played
    for prompt in played:
        for lang in ("zh_CN", "en"):
            wav = tmp_path / lang / f"{prompt}.wav"
            assert wav.is_file(), f"{prompt} not rendered for {lang}"
    from surveys.definitions import load_builtin

    for name in builtin_names():
        for survey_prompt in load_builtin(name).prompts():
            assert (tmp_path / "en" / f"{survey_prompt.audio}.wav").is_file()
