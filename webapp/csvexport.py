"""Streamed CSV exports of filtered lists."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import chain

from sqlalchemy.orm import Session

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value  # a spreadsheet would otherwise run it as a formula
    return value


def stream(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """Yield the header line, then one CSV line per row, without building the file in memory."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in chain([header], rows):
        buf.seek(0)
        buf.truncate()
        writer.writerow([_cell(v) for v in row])
        yield buf.getvalue()


def query_rows(stmt, bind, batch: int = 2000) -> Iterator:
    """The objects ``stmt`` selects, read ``batch`` at a time through a session of their own.

    A streamed response is read after its view has returned, when the request's database
    session has already been closed: its rows cannot come from that session. The session here
    is opened on ``bind`` (the engine, taken while the view runs) at the first row and closed
    after the last one, or when the client goes away.
    """
    with Session(bind) as session:
        yield from session.execute(stmt.execution_options(yield_per=batch)).scalars()
