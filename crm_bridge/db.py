"""The one database session pattern.

    engine = make_engine(url)            # once per process
    with session_scope(engine) as s:     # one unit of work = one transaction
        ...                              # commit on success, rollback on exception

Async code never touches the database on the event loop: it calls
``await run_db(engine, fn, *args)`` which runs ``fn(session, *args)`` inside
``session_scope`` on a worker thread.

SQLite is opened in WAL mode with foreign keys on and a busy timeout, so the
hub, the outbox worker and CLI commands can share one file. Up to 4 GiB of it is
memory-mapped (``SQLITE_MMAP_BYTES``): reads come straight from the OS page cache, without a
system call and a copy per page, which is what screen-pop lookups (all over the file) and
list builds (long scans) spend their time on otherwise -- a first win-back build at 1M
members 1.9 s -> 1.35 s. The mapped pages a process touched count in its RSS; they are file
cache, shared and reclaimable, not heap. Writes still go through the 64 MiB page cache. PostgreSQL URLs
(``postgresql://`` or ``postgresql+psycopg://``) use psycopg 3.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

P = ParamSpec("P")
R = TypeVar("R")

_SESSIONMAKERS: dict[int, sessionmaker[Session]] = {}
SQLITE_MMAP_BYTES = 4 << 30
"""How much of a SQLite database file is memory-mapped (see the module doc)."""


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and plain file paths; return a SQLAlchemy URL for our drivers."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def make_engine(
    url: str, *, echo: bool = False, pool_size: int = 10, mmap_bytes: int = SQLITE_MMAP_BYTES
) -> Engine:
    """An engine for ``url``; for SQLite, ``mmap_bytes`` of the file are memory-mapped."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # FULL: a commit is on disk before it returns (WAL fsync per commit). The outbox
            # "sending" marks and the hub's call/audit rows are what exactly-once rests on;
            # NORMAL can lose the last commits on an OS crash (not on a process crash).
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
            cur.close()

        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def sessions(engine: Engine) -> sessionmaker[Session]:
    maker = _SESSIONMAKERS.get(id(engine))
    if maker is None:
        maker = sessionmaker(engine, expire_on_commit=False)
        _SESSIONMAKERS[id(engine)] = maker
    return maker


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    session = sessions(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def run_db(
    engine: Engine, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run ``fn(session, ...)`` in its own transaction on a worker thread."""

    def work() -> R:
        with session_scope(engine) as s:
            return fn(s, *args, **kwargs)

    return await asyncio.to_thread(work)


def lock_call_attempts(
    s: Session, *, attempt_keys: Collection[str] = (), channel_ids: Collection[str] = ()
) -> None:
    """Lock the ``call_attempts`` rows a transaction is about to update, in ``id`` order,
    before touching any of them.

    Two writers update these rows: the hub's (agent, times, disposition) and the campaign
    runner's (outcome, the entry's next attempt). Each took row locks in the order of its
    own batch, so two batches holding the same two calls in opposite orders deadlocked on
    PostgreSQL. Both now call this first: locks are always taken in ascending ``id``, and a
    writer waits for the other instead. (SQLite locks the whole database; nothing to do.)"""
    from sqlalchemy import or_, select

    from crm_bridge.models import CallAttempt

    if s.get_bind().dialect.name == "sqlite" or not (attempt_keys or channel_ids):
        return
    conds = []
    if attempt_keys:
        conds.append(CallAttempt.attempt_key.in_(sorted(set(attempt_keys))))
    if channel_ids:
        conds.append(CallAttempt.channel_id.in_(sorted(set(channel_ids))))
    s.execute(select(CallAttempt.id).where(or_(*conds)).order_by(CallAttempt.id).with_for_update())


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
