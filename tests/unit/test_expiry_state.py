"""A certificate's state and days left around its expiry: whole days, counted the same way
before and after it (SSL › Certificates, its page and the dashboard show them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from webapp.certificates.models import Certificate
from webapp.certificates.service import state_of
from webapp.certificates.views import expiry_html

NOT_AFTER = datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC)  # a leap day, as Entrust ends them


@pytest.mark.parametrize(
    ("since_expiry", "state", "badge"),
    [
        (-timedelta(days=90, seconds=1), "valid", "90d left"),
        (-timedelta(days=30, seconds=1), "soon", "30d left"),
        (-timedelta(days=30) + timedelta(seconds=1), "warning", "29d left"),
        (-timedelta(days=7, seconds=1), "warning", "7d left"),
        (-timedelta(hours=23), "critical", "0d left"),
        (timedelta(seconds=1), "expired", "Expired 0d ago"),
        (timedelta(hours=23), "expired", "Expired 0d ago"),
        (timedelta(hours=25), "expired", "Expired 1d ago"),
        (timedelta(days=2, hours=1), "expired", "Expired 2d ago"),
    ],
)
def test_days_left_and_days_since_are_whole_days(since_expiry, state, badge):
    cert = Certificate(not_before=NOT_AFTER - timedelta(days=365), not_after=NOT_AFTER)
    now = NOT_AFTER + since_expiry
    assert state_of(cert, now)[0] == state
    html = str(expiry_html(cert, now))
    assert "2028-02-29" in html and f">{badge}</span>" in html


@pytest.mark.parametrize(
    ("since_expiry", "suspended", "starts_in", "state", "badge"),
    [
        (-timedelta(days=100), True, None, "suspended", "Suspended"),
        (-timedelta(days=3), True, None, "suspended", "Suspended"),
        (-timedelta(days=100), False, timedelta(days=1), "not_yet_valid", "Not valid yet"),
        (-timedelta(days=100), True, timedelta(days=1), "suspended", "Suspended"),
        # Past its expiry it is expired, suspended or not.
        (timedelta(hours=25), True, None, "expired", "Expired 1d ago"),
    ],
)
def test_suspended_and_not_yet_valid_are_not_valid(
    since_expiry, suspended, starts_in, state, badge
):
    now = NOT_AFTER + since_expiry
    cert = Certificate(
        not_before=now + starts_in if starts_in else NOT_AFTER - timedelta(days=365),
        not_after=NOT_AFTER,
        suspended_at=now - timedelta(days=1) if suspended else None,
    )
    assert state_of(cert, now)[0] == state
    assert f">{badge}</span>" in str(expiry_html(cert, now))
