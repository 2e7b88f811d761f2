"""Alembic environment: runs against the URL set by crm_bridge.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from crm_bridge.db import make_engine
from crm_bridge.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_ = pool
if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
