from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from memberline.config import ConfigError, Secret, load_config


def test_defaults_load_and_validate() -> None:
    cfg = load_config(env={})
    assert cfg.calling.abandon_cap == 0.03
    assert cfg.database.url.startswith("sqlite")


def test_file_env_and_refs(tmp_path: Path) -> None:
    f = tmp_path / "m.toml"
    f.write_text('[ami]\nhost = "pbx"\nsecret = "${AMI_PW}"\n[calling]\nabandon_cap = 0.02\n')
    cfg = load_config(f, env={"AMI_PW": "s3cret-value"})
    assert cfg.ami.host == "pbx"
    assert cfg.ami.secret.get() == "s3cret-value"
    assert "s3cret" not in repr(cfg)
    assert cfg.calling.abandon_cap == 0.02


def test_env_override_wins(tmp_path: Path) -> None:
    cfg = load_config(
        env={"MEMBERLINE_DB": "postgresql+psycopg://x/y", "MEMBERLINE_AMI_SECRET": "abc"}
    )
    assert cfg.database.url == "postgresql+psycopg://x/y"
    assert cfg.ami.secret == Secret("abc")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[ami]\nhots = 'x'\n", "unknown key(s) hots"),
        ("[ami]\nport = 'x'\n", "ami.port: expected an integer"),
        ("[calling]\nwindow_start = '9am'\n", "calling.window_start"),
        ("[ami]\nsecret = '${NOPE}'\n", "NOPE is not set"),
        ("not toml [", "not valid TOML"),
        ("[ami]\nmaintainer_ring_s = 0\n", "ami.maintainer_ring_s"),
        ("[agi]\nhotline_locale = 'fr'\n", "agi.hotline_locale"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_config(f, env={})


def test_example_config_is_in_sync_and_loads() -> None:
    from memberline.config import render_example

    path = Path(__file__).resolve().parents[2] / "docs" / "memberline.example.toml"
    assert path.read_text(encoding="utf-8") == render_example()
    assert load_config(path, env={}) == load_config(env={})


def test_unsubscribe_secret_comes_from_the_environment() -> None:
    cfg = load_config(env={"MEMBERLINE_UNSUBSCRIBE_SECRET": "unsub-Secret-0123456789"})
    assert cfg.messaging.unsubscribe_secret == Secret("unsub-Secret-0123456789")
    assert "unsub-Secret" not in repr(cfg)


@pytest.mark.parametrize(
    ("public_url", "secret", "ok", "needle"),
    [
        ("http://127.0.0.1:8088", "", True, "derived key"),
        ("https://hooks.example.com", "", False, "MEMBERLINE_UNSUBSCRIBE_SECRET"),
        ("https://hooks.example.com", "tiny-7", False, "shorter than 16"),
        ("https://hooks.example.com", "a-long-enough-secret-42", True, "set"),
    ],
)
def test_check_config_asks_for_an_unsubscribe_secret_when_public(
    public_url: str, secret: str, ok: bool, needle: str
) -> None:
    from memberline.checks import check_unsubscribe_secret
    from memberline.stack import unsubscribe_secret

    env = {"MEMBERLINE_UNSUBSCRIBE_SECRET": secret} if secret else {}
    cfg = load_config(env=env)
    cfg = dataclasses.replace(
        cfg, messaging=dataclasses.replace(cfg.messaging, public_url=public_url)
    )
    check = check_unsubscribe_secret(cfg)
    assert (check.ok, needle in check.message) == (ok, True), check
    assert secret == "" or secret not in check.message
    key = unsubscribe_secret(cfg)
    assert key == secret.encode() if secret else len(key) == 32


def test_wrapup_maxima_reach_the_hub(tmp_path: Path) -> None:
    from memberline.stack import hub_settings

    f = tmp_path / "m.toml"
    f.write_text(
        '[calling]\nwrapup_max_s = 45\nwrapup_max_by_queue = [["support", 0]]\nshift_hours = 10\n'
    )
    settings = hub_settings(load_config(f, env={}))
    assert settings.wrapup_max_for("members") == 45.0
    assert settings.wrapup_max_for("support") == 0.0  # until the disposition is saved
    assert settings.shift_s == 36000.0
    f.write_text("[calling]\nwrapup_max_s = -1\n")
    with pytest.raises(ConfigError, match="wrapup_max_s"):
        load_config(f, env={})


def test_hub_settings_come_from_the_config_by_name(tmp_path: Path) -> None:
    """One set of defaults, one mapping: every hub setting the config has is read from it."""
    import dataclasses

    from cti.hub.settings import HubSettings
    from memberline.config import Config
    from memberline.stack import hub_settings

    assert hub_settings(Config()) == HubSettings()
    f = tmp_path / "m.toml"
    f.write_text(
        '[ami]\nport = 5999\nqueue = "vip"\nsurvey_context = "ivr"\n[hub]\nport = 7171\n'
        '[calling]\npause_reasons = ["tea"]\n[care]\nreasons_needing_note = []\n'
    )
    s = hub_settings(load_config(f, env={}))
    assert (s.port, s.queue, s.pause_reasons, s.reasons_needing_note) == (7171, "vip", ("tea",), ())
    assert (
        s.survey_context == HubSettings().survey_context
    )  # the IVR campaigns' context is not the hub's
    assert dataclasses.replace(s, port=0).port == 0
