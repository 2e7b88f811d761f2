"""Alembic migrations, driven from code (``memberline db upgrade``) and tests."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig

from crm_bridge.db import normalise_url


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "crm_bridge:migrations")
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> None:
    command.current(alembic_config(url), verbose=False)


def check(url: str) -> None:
    """Raise if the models and the migrations have drifted apart (``alembic check``)."""
    command.check(alembic_config(url))
