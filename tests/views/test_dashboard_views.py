"""Dashboard: counts by state, the SVG timeline, urgent certificates, recent activity."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.certs.factory import MiniPki
from webapp.certificates import service
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


def test_empty_dashboard(auditor_client):
    page = auditor_client.get("/")
    assert page.status_code == 200 and "No certificates yet" in page.get_data(as_text=True)


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
