"""Admin > Audit."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, request
from flask_login import current_user
from werkzeug.exceptions import BadRequest, Forbidden

from webapp import errors, htmx
from webapp.audit import service
from webapp.downloads import attachment
from webapp.paging import page_args, paginate
from webapp.security import csrf, rbac

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

FILTER_KEYS = ("user", "action", "object", "since", "until", "tz", "per_page")


def _zone():
    """The viewer's time zone (``tz``, an IANA name the page's script fills in), in which the
    list shows its times and so From and To mean their days; UTC without one (no script: the
    times are shown in UTC then) or with one that is not a zone."""
    name = request.args.get("tz", "").strip()
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


# Characters shown as \uXXXX in an event's detail: controls, direction overrides and other
# invisible formatting, and what is not a character (a name must not reorder or hide the text).
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


@bp.app_template_filter("audit_detail")
def shown_detail(text: str) -> str:
    """An event's stored detail (JSON, every character beyond ASCII escaped, as its hash was
    taken) as a reader reads it: "›" and "é" as such, only the characters that would hide or
    reorder text still escaped."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    shown = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in _HIDDEN else c for c in shown)


DAY_LABELS = {"since": "From", "until": "To"}


def _day(name: str) -> date | None:
    """The day given as ``name``; one that is not a day is refused (400), not ignored: the list
    and its export would otherwise show every event as if filtered."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        raise BadRequest(
            f"{DAY_LABELS[name]} “{raw[:40]}” is not a date: give it as YYYY-MM-DD, "
            "such as 2026-01-31, or leave it empty."
        ) from None


def _day_start(day: date, zone) -> datetime:
    """Midnight at the start of ``day`` in ``zone``, in UTC (clamped at the ends of time)."""
    try:
        return datetime.combine(day, time(), zone).astimezone(UTC)
    except OverflowError:
        return (datetime.min if day.year == 1 else datetime.max).replace(tzinfo=UTC)


def _filter() -> service.AuditFilter:
    zone = _zone()
    since, until = _day("since"), _day("until")
    return service.AuditFilter(
        user=request.args.get("user", ""),
        action=request.args.get("action", ""),
        object=request.args.get("object", ""),
        since=None if since is None else _day_start(since, zone),
        # The whole "until" day (to the end of time for the last day there is).
        until=None
        if until is None or until == date.max
        else _day_start(until + timedelta(days=1), zone),
    )


@bp.get("/")
@rbac.require(rbac.AUDIT_READ)
def index():
    f = _filter()
    page, per_page = page_args(50)
    result = paginate(service.query(f).execution_options(listed=service.LISTED), page, per_page)
    return htmx.render(
        "audit/index.html",
        block="results",
        page=result,
        actions=service.actions(),
        args={k: v for k, v in request.args.items() if k in FILTER_KEYS and v},
        partial=htmx.is_htmx(),
        dates_swapped=_dates_swapped(),
        issued_by=service.issuing_order(f),
    )


def _dates_swapped() -> bool:
    """From is a later day than To: no event can match (the page says so, not just "none")."""
    since, until = _day("since"), _day("until")
    return since is not None and until is not None and since > until


@bp.get("/export.csv")
@rbac.require(rbac.AUDIT_READ)
@csrf.asked_here("Export CSV of the audit trail")
def export():
    return attachment(service.export_csv(current_user, _filter()), "text/csv", "certdesk-audit.csv")


@bp.app_errorhandler(Forbidden)
def refused(exc: Forbidden):
    """Every refusal (403) of every route goes into the audit trail, then the usual error page."""
    actor = current_user if current_user.is_authenticated else "anonymous"
    # The trail gives the reason in the words the refused person read.
    reason = errors.plain(exc.description)
    service.record_refusal(actor, request.endpoint, request.method, request.path, reason)
    return errors.handle_http(exc)
