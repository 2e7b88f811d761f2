"""Many rows in one column: the several small queries of a screen pop as one SQL statement.

A pop reads one member's file from ten tables. As ten statements, most of the time goes to
running each statement through SQLAlchemy and the driver, not to the database. Here each
part becomes a scalar subquery that returns its rows as a JSON array of arrays (SQLite
``json_group_array(json_array(...))``, PostgreSQL ``json_agg(json_build_array(...))::text``),
so the whole file is one statement, and :class:`RowsDecoder` turns the JSON back into exactly
the values the columns' own types give when they are selected directly (the type's result
processor runs on the same raw value; PostgreSQL's JSON spells dates and times in ISO 8601
where the driver would give objects, so those are parsed first). Numbers are parsed as
``Decimal`` so a ``numeric(12, 2)`` keeps its two places.

Each row carries its ``row_number()`` in the part's order, and decoding sorts by it: an
aggregate's input order is not something either database promises.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Integer,
    Numeric,
    Select,
    Text,
    TypeDecorator,
    cast,
    func,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

__all__ = ["RowsDecoder", "json_row", "json_rows"]


def _array(dialect_name: str, cols: Sequence[Any]) -> ColumnElement[Any]:
    if dialect_name == "postgresql":
        return func.json_build_array(*cols)
    return func.json_array(*cols)


def json_rows(dialect_name: str, stmt: Select[Any], order_by: Sequence[Any]) -> Any:
    """``stmt``'s rows (it carries its own WHERE and LIMIT; ``order_by`` orders and limits
    them) as one JSON text value, NULL when there are none. Decode with
    ``RowsDecoder(stmt, dialect).rows(value)``."""
    numbered = stmt.add_columns(func.row_number().over(order_by=list(order_by))).order_by(*order_by)
    sub = numbered.subquery()
    row = _array(dialect_name, list(sub.c))
    if dialect_name == "postgresql":
        agg: ColumnElement[Any] = cast(func.json_agg(row), Text)
    else:
        agg = func.json_group_array(row)
    return select(agg).select_from(sub).scalar_subquery()


def json_row(dialect_name: str, stmt: Select[Any]) -> Any:
    """The first row of ``stmt`` as one JSON array (NULL when none); decode with
    ``RowsDecoder(stmt, dialect, numbered=False).first(value)``."""
    sub = stmt.limit(1).subquery()
    row = _array(dialect_name, list(sub.c))
    value = cast(row, Text) if dialect_name == "postgresql" else row
    return select(value).select_from(sub).scalar_subquery()


def _converter(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    base = type_.impl if isinstance(type_, TypeDecorator) else type_
    if dialect.name != "sqlite" and isinstance(base, Numeric):
        # The driver gives Decimal as parse_float does (an integral value comes as an int).
        return lambda v: v if v is None or isinstance(v, Decimal) else Decimal(v)
    proc = type_.dialect_impl(dialect).result_processor(dialect, None)
    pre: Callable[[str], Any] | None = None
    if dialect.name != "sqlite":  # SQLite stores dates as text: JSON gives the stored value
        if isinstance(base, DateTime):
            pre = dt.datetime.fromisoformat
        elif isinstance(base, Date):
            pre = dt.date.fromisoformat
    if pre is None:
        return proc
    if proc is None:
        return lambda v: None if v is None else pre(v)
    return lambda v: None if v is None else proc(pre(v))


class RowsDecoder:
    """Decodes :func:`json_rows` / :func:`json_row` values of one statement into tuples."""

    def __init__(self, stmt: Select[Any], dialect: Dialect, *, numbered: bool = True) -> None:
        types = [c.type for c in stmt.selected_columns]
        if numbered:
            types.append(Integer())
        self._convert = [_converter(t, dialect) for t in types]
        self._numbered = numbered

    def _tuple(self, raw: list[Any]) -> tuple[Any, ...]:
        return tuple(v if f is None else f(v) for f, v in zip(self._convert, raw, strict=True))

    def rows(self, value: str | None) -> list[tuple[Any, ...]]:
        if value is None:
            return []
        raw = json.loads(value, parse_float=Decimal)
        if self._numbered:
            raw.sort(key=lambda r: r[-1])
            return [self._tuple(r)[:-1] for r in raw]
        return [self._tuple(r) for r in raw]

    def first(self, value: str | None) -> tuple[Any, ...] | None:
        if value is None:
            return None
        return self._tuple(json.loads(value, parse_float=Decimal))
