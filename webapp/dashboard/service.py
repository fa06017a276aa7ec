"""The dashboard's figures, each one SQL aggregate over indexed columns (no Python row loops)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import defer

from webapp.audit.models import AuditEvent
from webapp.certificates.models import Certificate
from webapp.dbtypes import utcnow
from webapp.extensions import db

WEEKS = 26


def _count(*conds):
    """A scalar COUNT subquery: many of them go to the database in one SELECT."""
    return select(func.count()).select_from(Certificate).where(*conds).scalar_subquery()


def state_counts(now: datetime | None = None) -> dict[str, int]:
    """Certificates by state: valid, expiring within 7/30/90 days, expired, revoked, total.

    One SELECT of COUNT subqueries, each a range of the (not_after, revoked_at) index, which
    covers it: no table reads and no Python loop over rows.
    """
    now = now or utcnow()
    na, live = Certificate.not_after, Certificate.revoked_at.is_(None)

    def ahead(days: int):
        return _count(na >= now, na < now + timedelta(days=days), live)

    row = db.session.execute(
        select(
            _count(),
            _count(na >= now, live),
            ahead(7),
            ahead(30),
            ahead(90),
            _count(na < now, live),
            _count(Certificate.revoked_at.is_not(None)),
        )
    ).one()
    names = ("total", "valid", "expiring_7", "expiring_30", "expiring_90", "expired", "revoked")
    return dict(zip(names, (int(v) for v in row), strict=True))


@dataclass
class Week:
    start: datetime
    count: int


def expiry_timeline(now: datetime | None = None, weeks: int = WEEKS) -> list[Week]:
    """Certificates (not revoked) expiring in each of the next ``weeks`` weeks, from today."""
    now = now or utcnow()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    bounds = [start + timedelta(weeks=i) for i in range(weeks + 1)]
    # One SELECT of a COUNT subquery per week, each a covered range of the expiry index.
    na, live = Certificate.not_after, Certificate.revoked_at.is_(None)
    row = db.session.execute(
        select(*[_count(na >= bounds[i], na < bounds[i + 1], live) for i in range(weeks)])
    ).one()
    counts = dict(enumerate(row))
    return [Week(bounds[i], int(counts.get(i, 0))) for i in range(weeks)]


def urgent(limit: int = 10, now: datetime | None = None) -> list[Certificate]:
    """The live certificates that expire next (expired in the last 30 days included): the same
    certificates the state tiles and the timeline count, CA certificates among them."""
    now = now or utcnow()
    return list(
        db.session.execute(
            select(Certificate)
            .options(defer(Certificate.pem), defer(Certificate.chain_pem))
            .where(
                Certificate.revoked_at.is_(None),
                Certificate.not_after >= now - timedelta(days=30),
            )
            .order_by(Certificate.not_after.asc())
            .limit(limit)
        ).scalars()
    )


def recent_activity(limit: int = 10) -> list[AuditEvent]:
    return list(
        db.session.execute(
            select(AuditEvent)
            .where(~AuditEvent.action.startswith("auth."))
            .order_by(AuditEvent.seq.desc())
            .limit(limit)
        ).scalars()
    )


@dataclass
class Chart:
    """The SVG geometry of the timeline, computed here so the template only draws."""

    width: int
    height: int
    bars: list[dict]
    max_count: int
    ticks: list[dict]


def timeline_chart(weeks: list[Week], width: int = 780, height: int = 200) -> Chart:
    top, bottom, left = 16, 28, 36
    plot_h = height - top - bottom
    max_count = max((w.count for w in weeks), default=0)
    scale_max = max(1, max_count)
    slot = (width - left) / max(1, len(weeks))
    bars = []
    for i, w in enumerate(weeks):
        h = round(plot_h * w.count / scale_max, 1)
        bars.append(
            {
                "x": round(left + i * slot + 2, 1),
                "y": round(top + plot_h - h, 1),
                "w": round(slot - 4, 1),
                "h": h,
                "count": w.count,
                "start": w.start,
                "label": w.start.strftime("%d %b") if i % 4 == 0 else "",
                "tone": "bad" if i < 1 else "warn" if i < 5 else "ok",
            }
        )
    ticks = [
        {"y": round(top + plot_h - plot_h * v / scale_max, 1), "value": v}
        for v in sorted({0, scale_max // 2, scale_max})
    ]
    return Chart(width, height, bars, max_count, ticks)
