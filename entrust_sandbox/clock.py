"""Sandbox time: real UTC time moved by an offset that the control API can advance."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

EST = timezone(timedelta(hours=-5))
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# RFC 3339's date-time (seconds and the offset may be left out, as Java's ISO parser allows):
# not the other ISO 8601 forms Python's fromisoformat also reads (20270601, 2027-W22-1, T00).
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)


def fmt(moment: datetime) -> str:
    """Format as the live API does for certificate and domain times: `YYYY-MM-DDTHH:MM:SSZ`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_millis(moment: datetime) -> str:
    """Format with milliseconds, as `summary.timestamp` is shown in the spec."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> datetime:
    """Parse an RFC 3339 date-time (fractions of any length, `Z` or an offset) or a date."""
    text = text.strip()
    if _DATE_RE.fullmatch(text):
        return datetime.combine(date.fromisoformat(text), time(), UTC)
    if not _DATETIME_RE.fullmatch(text):
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    # Python's parser takes at most 6 fraction digits; .NET sends 7.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def written_date(text: str) -> date:
    """The calendar date an RFC 3339 date or date-time is written with (its offset ignored)."""
    text = text.strip()
    if not (_DATE_RE.fullmatch(text) or _DATETIME_RE.fullmatch(text)):
        raise ValueError(f"not an RFC 3339 date: {text!r}")
    return date.fromisoformat(text[:10])


def parse_expiry_date(text: str, allow_datetime: bool) -> date:
    """Parse certExpiryDate: a date, or (when allowed) a date-time taken in EST as the spec says.
    Either is text: a JSON number is no date."""
    if not isinstance(text, str):
        raise ValueError("certExpiryDate must be text")
    text = text.strip()
    if _DATE_RE.fullmatch(text):
        return date.fromisoformat(text)
    if not allow_datetime:
        raise ValueError("certExpiryDate must be a date (YYYY-MM-DD)")
    return parse_datetime(text).astimezone(EST).date()


class Clock:
    """Real time plus a shift in days; the sandbox reads time only through this."""

    def __init__(self, offset_days: float = 0.0):
        self.offset_days = offset_days

    def now(self) -> datetime:
        """The sandbox's current time, UTC, whole seconds."""
        return self.wall() + timedelta(days=self.offset_days)

    @staticmethod
    def wall() -> datetime:
        """Real time, UTC, whole seconds: what HTTP dates (Date, Retry-After) are told in."""
        return datetime.now(UTC).replace(microsecond=0)
