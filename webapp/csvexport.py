"""Streamed CSV exports of filtered lists."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import chain

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
