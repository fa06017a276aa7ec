"""Search text in SQL: what the user typed is matched literally, never as a pattern."""

from __future__ import annotations

from sqlalchemy import func

ESCAPE = "\\"


def escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards (``%``, ``_``) and the escape character escaped."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def contains(column, text: str):
    """Case-insensitive "contains ``text``" on ``column`` (``text`` taken literally)."""
    like = "%" + escape_like(text.strip().lower()) + "%"
    return func.lower(column).like(like, escape=ESCAPE)


def starts_with(column, text: str):
    """ "Starts with ``text``" on ``column`` (case as stored; ``text`` taken literally)."""
    return column.like(escape_like(text) + "%", escape=ESCAPE)


def contains_lowercased(column, text: str):
    """ "Contains ``text``" on a column that already holds lower-case text: ``text`` is lowered
    and taken literally, and the column is compared as stored (no LOWER() of every row)."""
    return column.like("%" + escape_like(text.strip().lower()) + "%", escape=ESCAPE)
