"""Column types shared by every feature's models."""

from datetime import UTC, datetime

from sqlalchemy import DateTime, String
from sqlalchemy.types import TypeDecorator


class CodePointString(String):
    """Text that searches compare code point by code point, as SQLite does, on every backend:
    made by :func:`code_point_text`."""


def code_point_text(length: int) -> String:
    """A column type for text that searches compare code point by code point, on every backend.

    A "starts with" search is an index range (``>= 'www.'`` and ``< 'www/'``, see
    ``webapp.search.starts_with``), right only in that order. A PostgreSQL database compares by
    its collation, and most (en_US.UTF-8, ICU's locales) weigh letters first and punctuation or
    accents only to break ties: there, "www." found no www.example.com and "host1" found
    "hoşt1". These columns take the "C" collation on PostgreSQL (migration 0016).
    """
    return CodePointString(length).with_variant(String(length, collation="C"), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores no zone, so we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def result_processor(self, dialect, coltype):
        if dialect.name == "sqlite":
            return _from_sqlite_text
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _from_sqlite_text(value):
    """A time as SQLite keeps it: UTC text without a zone ("2026-01-02 03:04:05.000006").

    Parsed with the zone appended, which is one step: parsing, then ``replace(tzinfo=UTC)``, costs
    six times as much, and a list page reads hundreds of these. Text with a zone of its own
    (written by hand, say) is read by its zone."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:
        pass
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"not a time: {value!r}")
    return parsed.astimezone(UTC)


# A certificate's, CSR's or order's subject alternative names are kept in one text column
# (``sans``), comma-separated: names hold no commas, and the lists' searches read the column.


def join_names(names) -> str:
    return ",".join(names)


def split_names(text: str | None) -> list[str]:
    return [name for name in (text or "").split(",") if name]


class SansShown:
    """What pages show of a row's ``sans`` column (a certificate, a CSR, an order; a model object
    or a row of a list): the names as a list, and the short form a list's cell shows."""

    @property
    def san_list(self) -> list[str]:
        return split_names(self.sans)

    @property
    def san_summary(self) -> tuple[str, int]:
        """The first four SANs as text, and how many more there are (for the list)."""
        names = self.san_list
        return ", ".join(names[:4]), max(0, len(names) - 4)
