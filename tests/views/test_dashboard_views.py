"""Dashboard: counts by state, the SVG timeline, urgent certificates, recent activity."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.conftest import link_sandbox
from tests.unit.certs.factory import MiniPki, _build, _name, ec_key
from webapp.certificates import service
from webapp.certificates.models import CertificateExpiryDay
from webapp.dashboard import service as dashboard
from webapp.dbtypes import utcnow
from webapp.extensions import db


def _fill(user):
    t = MiniPki()
    now = utcnow()
    made = {}
    for cn, start_days, days in [
        ("week.example.com", -360, 363),  # 3 days left
        ("month.example.com", -300, 320),  # 20 days left
        ("quarter.example.com", -300, 360),  # 60 days left
        ("later.example.com", -1, 365),
        ("gone.example.com", -400, 390),  # expired 10 days ago
        ("revoked.example.com", -1, 365),
    ]:
        _, cert = t.leaf(cn, start=now + timedelta(days=start_days), days=days)
        made[cn], _ = service.add_certificate(cert, actor=user["admin"])
    made["revoked.example.com"].revoked_at = now
    db.session.commit()
    return made


def test_counts_and_timeline(app, user):
    _fill(user)
    counts = dashboard.state_counts()
    assert counts == {
        "total": 6,
        "valid": 4,
        "expiring_7": 1,
        "expiring_30": 2,
        "expiring_90": 3,
        "suspended": 0,
        "not_yet_valid": 0,
        "expired": 1,
        "revoked": 1,
    }
    weeks = dashboard.expiry_timeline()
    assert len(weeks) == 26 and sum(w.count for w in weeks) == 3
    assert weeks[0].count == 1  # expires in 3 days
    urgent = [c.common_name for c in dashboard.urgent()]
    assert (
        urgent[:2] == ["gone.example.com", "week.example.com"]
        and "revoked.example.com" not in urgent
    )


def test_dashboard_page(app, user, auditor_client):
    _fill(user)
    page = auditor_client.get("/").get_data(as_text=True)
    assert "<svg" in page and 'id="expiry-timeline"' in page and "<rect" in page
    assert "week.example.com" in page and "certificate.add" in page
    assert "Recent jobs" in page and "Expiring within 7 days" in page
    # The chart's figures are also a table, week by week, for who cannot see the bars.
    table = page.split('id="expiry-timeline-table"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>(\d{4}-\d{2}-\d{2})</td><td>(\d+)</td></tr>", table)
    weeks = dashboard.expiry_timeline()
    assert rows == [(f"{w.start:%Y-%m-%d}", str(w.count)) for w in weeks]
    assert sum(int(n) for _, n in rows) == 3


def test_only_who_reads_the_audit_trail_sees_recent_activity(
    app, user, admin_client, operator_client, auditor_client
):
    from webapp.audit import service as audit

    audit.record("user.role", actor=user["admin"], object_type="user", object_id=7)
    db.session.commit()
    for reader in (admin_client, auditor_client):
        page = reader.get("/").get_data(as_text=True)
        assert 'id="recent-activity"' in page and "user.role" in page
    page = operator_client.get("/").get_data(as_text=True)
    assert len(re.findall(r"<h2[ >]", page)) >= 3  # the rest of the dashboard is there
    assert "Recent activity" not in page and "user.role" not in page


def test_empty_dashboard(auditor_client, operator_client):
    page = auditor_client.get("/")
    assert page.status_code == 200 and "No certificates yet" in page.get_data(as_text=True)
    assert "/entrust/import" not in page.get_data(as_text=True)  # an auditor only reads
    # Who may order is led to the ways in: the Entrust account's orders first.
    empty = re.search(
        r'<td[^>]*id="no-certificates".*?</td>',
        operator_client.get("/").get_data(as_text=True),
        re.S,
    )
    cell = empty.group(0)
    assert 'href="/entrust/import">Import Existing Orders</a>' in cell
    assert 'href="/entrust/new"' in cell and 'href="/certificates/import"' in cell


def _first_steps(client) -> str:
    """The words of the dashboard's "No certificates yet" cell, without their markup."""
    page = client.get("/").get_data(as_text=True)
    cell = re.search(r'<td[^>]*id="no-certificates"[^>]*>(.*?)</td>', page, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", cell).split())


def test_a_first_dashboard_starts_with_linking_the_entrust_account(
    admin_client, operator_client, auditor_client, user, sandbox
):
    """Before any Entrust account is linked, importing or ordering cannot work yet: the first
    step named is to link it, by whoever can; once linked, the ways in are named as before."""
    assert _first_steps(admin_client) == (
        "No certificates yet. Link your Entrust account in SSL › Entrust › Manage first; then "
        "Import Existing Orders from Entrust or order a certificate; or import certificate files."
    )
    assert _first_steps(operator_client).startswith(
        "No certificates yet. An administrator links your Entrust account in "
        "SSL › Entrust › Manage first; then Import Existing Orders"
    )
    assert _first_steps(auditor_client) == "No certificates yet."
    link_sandbox(user, sandbox)
    assert _first_steps(admin_client) == (
        "No certificates yet. Import Existing Orders from Entrust or order a certificate; or "
        "import certificate files."
    )


def test_a_self_signed_ca_certificate_counts_in_tiles_chart_and_most_urgent(
    app, user, auditor_client
):
    from tests.unit.certs.factory import _build, _name, ec_key

    key = ec_key()
    now = utcnow()
    # What `openssl req -x509` makes: self-signed, marked as a CA, here expiring in 20 days.
    cert = _build(
        _name("appliance.example.com"),
        _name("appliance.example.com"),
        key.public_key(),
        key,
        ca=True,
        start=now - timedelta(days=10),
        days=30,
    )
    row, _ = service.add_certificate(cert, actor=user["admin"])
    assert row.is_ca
    assert dashboard.state_counts()["expiring_30"] == 1
    assert sum(w.count for w in dashboard.expiry_timeline()) == 1
    assert [c.common_name for c in dashboard.urgent()] == ["appliance.example.com"]
    page = auditor_client.get("/").get_data(as_text=True)
    urgent_table = page.split('id="urgent-table"')[1].split("</table>")[0]
    assert "appliance.example.com" in urgent_table and "No certificates yet" not in urgent_table


def test_most_urgent_says_nothing_is_due_when_certificates_exist(app, user, auditor_client):
    made = _fill(user)
    for row in made.values():
        row.revoked_at = utcnow()
    db.session.commit()
    page = auditor_client.get("/").get_data(as_text=True)
    urgent_table = page.split('id="urgent-table"')[1].split("</table>")[0]
    assert "No certificates yet" not in urgent_table
    assert "Nothing expires soon" in urgent_table


def _day_counters() -> list:
    rows = db.session.execute(select(CertificateExpiryDay).order_by(CertificateExpiryDay.day))
    return [
        (r.day, r.live, r.suspended, r.revoked)
        for r in rows.scalars()
        if r.live or r.suspended or r.revoked
    ]


def test_counters_follow_every_change_and_count_the_same_set_everywhere(app, user):
    """Revoked through the service or by a plain attribute change, deleted, added: the per-day
    counters behind the tiles and the chart follow, agree with a recount from the rows, and count
    what Most urgent lists (a self-signed CA certificate expiring in 20 days included)."""
    made = _fill(user)
    service.mark_revoked(made["week.example.com"], actor="test")
    service.delete_certificate(user["admin"], made["later.example.com"])
    now = utcnow()
    key = ec_key()
    own_ca = _build(_name("Own CA"), _name("Own CA"), key.public_key(), key, ca=True, days=20)
    service.add_certificate(own_ca, actor=user["admin"])
    assert dashboard.state_counts(now) == {
        "total": 6,
        "valid": 3,
        "expiring_7": 0,
        "expiring_30": 2,
        "expiring_90": 3,
        "suspended": 0,
        "not_yet_valid": 0,
        "expired": 1,
        "revoked": 2,
    }
    kept = _day_counters()
    assert service.recount_expiry_days() > 0
    assert _day_counters() == kept
    weeks = dashboard.expiry_timeline(now)
    assert weeks[2].count == 2  # month.example.com and the CA certificate, both in 20 days
    assert "Own CA" in [c.common_name for c in dashboard.urgent(10, now)]


def test_suspended_certificates_are_counted_apart_and_the_counters_follow(app, user):
    """Suspended (a valid one, an expired one), then resumed, then revoked while suspended: the
    tiles, the chart and Most urgent leave a suspended certificate out of every valid figure, an
    expired one stays expired, and the day counters agree with a recount from the rows."""
    made = _fill(user)
    service.mark_suspended(made["quarter.example.com"], actor="test")
    service.mark_suspended(made["gone.example.com"], actor="test")
    service.mark_suspended(made["revoked.example.com"], actor="test")  # revoked: left alone
    db.session.commit()
    now = utcnow()
    assert dashboard.state_counts(now) == {
        "total": 6,
        "valid": 3,
        "expiring_7": 1,
        "expiring_30": 2,
        "expiring_90": 2,
        "suspended": 1,
        "not_yet_valid": 0,
        "expired": 1,
        "revoked": 1,
    }
    assert sum(w.count for w in dashboard.expiry_timeline(now)) == 2
    urgent = [c.common_name for c in dashboard.urgent(10, now)]
    assert "quarter.example.com" not in urgent and "gone.example.com" in urgent
    kept = _day_counters()
    assert sum(suspended for _day, _live, suspended, _revoked in kept) == 2
    service.recount_expiry_days()
    assert _day_counters() == kept

    service.mark_resumed(made["quarter.example.com"], actor="test")
    made["gone.example.com"].revoked_at = now
    db.session.commit()
    counts = dashboard.state_counts(now)
    assert (counts["valid"], counts["suspended"], counts["expired"], counts["revoked"]) == (
        4,
        0,
        0,
        2,
    )
    kept = _day_counters()
    service.recount_expiry_days()
    assert _day_counters() == kept


def test_recent_activity_skips_sign_ins(app, user):
    from webapp.audit import service as audit

    audit.record("certificate.add", actor=user["admin"], object_type="certificate", object_id=1)
    for _ in range(30):
        audit.record("auth.login_failed", actor="mallory", object_type="user", object_id="x")
    db.session.commit()
    actions = [e.action for e in dashboard.recent_activity(10)]
    assert actions and "certificate.add" in actions
    assert not any(a.startswith("auth.") for a in actions)


def test_recent_activity_says_which_actions_failed(app, user, auditor_client):
    from webapp.audit import service as audit

    audit.record("credential.test", actor=user["admin"], object_type="credential", object_id=3)
    audit.record(
        "order.place", actor=user["admin"], object_type="order", object_id=9, outcome="failure"
    )
    db.session.commit()
    page = auditor_client.get("/").get_data(as_text=True)
    items = page.split('id="recent-activity"')[1].split("</ul>")[0].split("<li>")
    failed = next(i for i in items if "order.place" in i)
    succeeded = next(i for i in items if "credential.test" in i)
    assert ">failure</span>" in failed
    assert "badge" not in succeeded


def test_the_first_week_of_the_timeline_leaves_out_what_expired_earlier_today(app, user):
    """The chart's first week starts at midnight UTC, but a certificate that expired since then
    is expired (its tile says so), not expiring this week: the bars add up to the valid ones."""
    t = MiniPki()
    now = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    for cn, expires in [
        ("this-morning.example.com", now - timedelta(hours=1)),
        ("this-afternoon.example.com", now + timedelta(hours=1)),
    ]:
        _, cert = t.leaf(cn, start=expires - timedelta(days=90), days=90)
        service.add_certificate(cert, actor=user["admin"])
    db.session.commit()
    counts = dashboard.state_counts(now)
    assert counts["expired"] == 1 and counts["expiring_7"] == 1
    weeks = dashboard.expiry_timeline(now)
    assert weeks[0].start == now.replace(hour=0)
    assert weeks[0].count == 1 and sum(w.count for w in weeks) == counts["valid"] == 1


def test_the_timeline_labels_say_the_year_first_and_where_a_new_one_starts():
    """26 weeks from December run into the next year: the first label and the first label of
    the new year carry their year, so "04 Jan" is not read as last January."""
    start = datetime(2026, 12, 7, tzinfo=UTC)
    weeks = [dashboard.Week(start + timedelta(weeks=i), 0) for i in range(26)]
    labels = [b["label"] for b in dashboard.timeline_chart(weeks).bars if b["label"]]
    assert labels == [
        "07 Dec 2026",
        "04 Jan 2027",
        "01 Feb",
        "01 Mar",
        "29 Mar",
        "26 Apr",
        "24 May",
    ]
