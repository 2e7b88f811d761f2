from __future__ import annotations

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
