import csv
import html
import io
import json
import re

from tests.helpers import HTMX
from webapp.audit import service as audit
from webapp.audit.models import AuditEvent
from webapp.dbtypes import utcnow
from webapp.extensions import db


def _events(n, action="cert.import"):
    for i in range(n):
        audit.record(action, actor="test", object_type="certificate", object_id=i, detail={"n": i})
    db.session.commit()


def test_filters_and_paging(admin_client):
    _events(60)
    _events(3, action="=cmd|' /C calc'!A0")  # a formula-looking value, for the CSV test below
    page = admin_client.get("/admin/audit/?action=cert.import&per_page=25").get_data(as_text=True)
    assert "1–25 of 60" in page and "Page 1 of 3" in page
    page3 = admin_client.get("/admin/audit/?action=cert.import&per_page=25&page=3")
    assert "51–60 of 60" in page3.get_data(as_text=True)
    obj = admin_client.get("/admin/audit/?object=certificate:7").get_data(as_text=True)
    assert "1–1 of 1" in obj
    user = admin_client.get("/admin/audit/?user=operator").get_data(as_text=True)
    assert "No audit events match" in user


def test_the_user_and_object_filters_read_what_is_typed_as_the_trail_writes_it(admin_client):
    """A user name in any case or in full-width letters names the user, as at sign-in; an
    object's type in capitals or with spaces around its id names the object."""
    _events(3)
    for typed in ("certificate:1", "Certificate: 1", " CERTIFICATE : 1 "):
        page = admin_client.get("/admin/audit/", query_string={"object": typed})
        assert "1–1 of 1" in page.get_data(as_text=True), typed
    signed_in = admin_client.get("/admin/audit/?user=admin").get_data(as_text=True)
    assert "auth.login" in signed_in
    for typed in ("ADMIN", "ａｄｍｉｎ", " Admin "):
        page = admin_client.get("/admin/audit/", query_string={"user": typed})
        assert "auth.login" in page.get_data(as_text=True), typed
        export = admin_client.get("/admin/audit/export.csv", query_string={"user": typed})
        assert ",admin,auth.login," in export.get_data(as_text=True), typed


def test_htmx_gets_only_the_results_block(admin_client):
    _events(2)
    frag = admin_client.get("/admin/audit/?action=cert.import", headers=HTMX).get_data(as_text=True)
    assert 'id="audit-table"' in frag and "<html" not in frag and "<form" not in frag
    full = admin_client.get("/admin/audit/?action=cert.import").get_data(as_text=True)
    assert "<html" in full and 'id="audit-results"' in full


def test_csv_export_of_the_filtered_rows(admin_client):
    _events(5)
    _events(2, action="=cmd|' /C calc'!A0")
    resp = admin_client.get("/admin/audit/export.csv?action=cert.import")
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == 5 and {r["action"] for r in rows} == {"cert.import"}
    all_rows = list(
        csv.DictReader(
            io.StringIO(admin_client.get("/admin/audit/export.csv").get_data(as_text=True))
        )
    )
    formulas = [r for r in all_rows if "calc" in r["action"]]
    assert formulas and all(r["action"].startswith("'=") for r in formulas)


def test_dates_and_the_actions_drop_down(admin_client):
    _events(3)
    today = utcnow().date().isoformat()
    page = admin_client.get(f"/admin/audit/?action=cert.import&since={today}&until={today}")
    assert "1–3 of 3" in page.get_data(as_text=True)
    for qs in ("until=2000-01-01", "since=2999-01-01"):
        body = admin_client.get(f"/admin/audit/?{qs}").get_data(as_text=True)
        assert "No audit events match" in body
    full = admin_client.get("/admin/audit/").get_data(as_text=True)
    assert '<option value="cert.import"' in full


def test_a_from_day_after_the_to_day_says_so(admin_client):
    _events(2)
    frag = admin_client.get(
        "/admin/audit/?since=2026-12-05&until=2026-12-01", headers=HTMX
    ).get_data(as_text=True)
    assert "From (2026-12-05) is after To (2026-12-01), so no event can match" in frag
    assert "No audit events match" not in frag
    same_day = admin_client.get(
        f"/admin/audit/?since={utcnow():%Y-%m-%d}&until={utcnow():%Y-%m-%d}"
    )
    assert "is after To" not in same_day.get_data(as_text=True)


def test_a_day_that_is_not_a_date_is_refused_in_words_by_the_list_and_the_export(admin_client):
    from sqlalchemy import func, select

    _events(3)
    before = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    for url in ("/admin/audit/", "/admin/audit/export.csv"):
        resp = admin_client.get(f"{url}?since=notadate")
        assert resp.status_code == 400, url
        assert "From “notadate” is not a date" in resp.get_data(as_text=True)
        resp = admin_client.get(f"{url}?since=2026-12-01&until=2026-13-45")
        assert resp.status_code == 400 and "To “2026-13-45” is not a date" in resp.get_data(True)
    # From the filter form (htmx): said in the banner, the list left as it was.
    frag = admin_client.get("/admin/audit/?until=31/12/2026", headers=HTMX)
    assert frag.status_code == 400 and frag.headers["HX-Retarget"] == "#banner"
    # Nothing was exported, so nothing was recorded.
    after = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    assert after == before


def test_an_export_another_site_started_asks_first_and_records_nothing(admin_client):
    from sqlalchemy import func, select

    from webapp.audit.models import AuditEvent

    def exports():
        stmt = select(func.count()).where(
            AuditEvent.action.in_(("audit.export", "certificate.export"))
        )
        return db.session.execute(stmt).scalar_one()

    done = 0
    for path, label in (
        ("/admin/audit/export.csv?action=cert.import", "Export CSV of the audit trail"),
        ("/certificates/export.csv?q=shop", "Export CSV of certificates"),
    ):
        for site in ("cross-site", "same-site"):
            resp = admin_client.get(path, headers={"Sec-Fetch-Site": site})
            page = resp.get_data(as_text=True)
            assert resp.status_code == 403 and resp.mimetype == "text/html", site
            assert f'href="{path.replace("&", "&amp;")}" id="export-here"' in page and label in page
        assert exports() == done
        # Started from CertDesk's own page, or typed into the address bar: exported, recorded.
        for site in ("same-origin", "none"):
            resp = admin_client.get(path, headers={"Sec-Fetch-Site": site})
            assert resp.status_code == 200 and resp.mimetype == "text/csv", site
            assert resp.get_data(as_text=True).startswith(("id,", "seq,")), site
            done += 1
    assert exports() == done == 4


def test_from_and_to_are_days_of_the_viewers_time_zone_as_the_list_shows_times(admin_client):
    """The list shows each time in the viewer's zone (app.js), so From and To are that zone's
    days, the page's form sending the zone along (``tz``); without one, UTC's days."""
    from datetime import datetime

    from sqlalchemy import func, select, update

    from webapp.audit.models import AuditEvent

    # In Auckland (UTC+13 in March): 1 March 22:00, 2 March 09:00, 2 March 22:00, 4 March 01:00.
    times = ["2025-03-01T09:00Z", "2025-03-01T20:00Z", "2025-03-02T09:00Z", "2025-03-03T12:00Z"]
    for i, when in enumerate(times):
        audit.record("test.zone", actor="test", object_type="certificate", object_id=i)
        db.session.flush()
        seq = db.session.execute(select(func.max(AuditEvent.seq))).scalar_one()
        at = datetime.fromisoformat(when)
        db.session.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(at=at))
    db.session.commit()

    def shown(query: str, export: bool = False) -> list[str]:
        if export:
            text = admin_client.get(f"/admin/audit/export.csv?action=test.zone&{query}")
            rows = csv.DictReader(io.StringIO(text.get_data(as_text=True)))
            return [r["object_id"] for r in rows if r["action"] == "test.zone"]
        page = admin_client.get(f"/admin/audit/?action=test.zone&{query}").get_data(as_text=True)
        return re.findall(r"<td>certificate:(\d+)</td>", page)

    day = "since=2025-03-02&until=2025-03-02"
    assert shown(day + "&tz=Pacific/Auckland") == ["2", "1"]
    assert shown(day + "&tz=Pacific/Auckland", export=True) == ["2", "1"]
    assert shown(day + "&tz=America/New_York") == ["2"]  # 2 March 04:00 there
    assert shown(day) == ["2"]  # UTC
    assert shown(day + "&tz=Not/AZone") == ["2"]  # not a zone: UTC
    assert shown("since=2025-03-04&tz=Pacific/Auckland") == ["3"]
    assert shown("until=2025-03-01&tz=Pacific/Auckland") == ["0"]
    # The ends of the calendar in a zone ahead of UTC or behind it: no error.
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        for q in ("since=0001-01-01&until=9999-12-31", "since=9999-12-31", "until=0001-01-01"):
            assert admin_client.get(f"/admin/audit/?{q}&tz={zone}").status_code == 200
    # The form carries the zone for the page's script to fill in, and the links keep it.
    page = admin_client.get(f"/admin/audit/?{day}&tz=Pacific/Auckland").get_data(as_text=True)
    assert 'name="tz" value="Pacific/Auckland" data-viewer-zone' in page
    assert "tz=Pacific/Auckland" in page.split('id="export-csv"')[1].split(">")[0]


# --- the chain's check (webapp.trailcheck) ------------------------------------------------


def _scheduled_check():
    from webapp.trailcheck import service as chaincheck

    chaincheck.scheduled_check()


def _chain_events():
    from sqlalchemy import select

    from webapp.audit.models import AuditEvent

    db.session.expire_all()
    stmt = select(AuditEvent).where(AuditEvent.action.like("audit.verify%"))
    return [
        (e.action, e.actor_name, e.object_id, e.outcome)
        for e in db.session.execute(stmt.order_by(AuditEvent.seq)).scalars()
    ]


def test_a_broken_trail_is_shown_to_administrators_and_auditors_not_operators(
    admin_client, auditor_client, operator_client
):
    from sqlalchemy import text

    _events(4)
    db.session.execute(text("DELETE FROM audit_event WHERE seq = 3"))
    db.session.commit()
    _scheduled_check()
    for client in (admin_client, auditor_client):
        page = client.get("/admin/audit/").get_data(as_text=True)
        alert = r'<article[^>]*role="alert" id="chain-broken">(.*?)</article>'
        banner = re.search(alert, page, re.S)
        assert banner, page
        words = re.sub(r"<[^>]+>", "", banner.group(1))
        assert re.search(
            r"The audit trail does not verify: row 3 is missing \(checked .+ UTC\)\. "
            r"Run certdesk audit verify",
            words,
        ), words
        assert 'id="chain-verified"' not in page
        dash = client.get("/").get_data(as_text=True)
        assert 'id="chain-notice"' in dash and "row 3 is missing" in dash
    assert operator_client.get("/admin/audit/").status_code == 403
    dash = operator_client.get("/").get_data(as_text=True)
    assert 'id="chain-notice"' not in dash and "does not verify" not in dash
    assert _chain_events() == [("audit.verify_failed", "scheduler", "3", "failure")]


def test_a_verified_trail_shows_a_quiet_line_and_an_unchecked_one_nothing(admin_client):
    _events(2)
    page = admin_client.get("/admin/audit/").get_data(as_text=True)
    assert "chain-verified" not in page and "chain-broken" not in page
    assert "chain-notice" not in admin_client.get("/").get_data(as_text=True)
    _scheduled_check()
    page = admin_client.get("/admin/audit/").get_data(as_text=True)
    line = re.search(r'<p class="muted" id="chain-verified">(.*?)</p>', page, re.S)
    assert line and re.fullmatch(
        r"Chain verified <time[^>]*>.+ UTC</time>, \d+ events\.", line.group(1)
    ), page
    assert 'role="alert"' not in page
    assert "chain-notice" not in admin_client.get("/").get_data(as_text=True)


def test_verify_now_is_for_administrators_with_the_csrf_token_and_is_recorded(
    admin_client, auditor_client
):
    from sqlalchemy import text

    from webapp.trailcheck import service as chaincheck

    _events(3)
    assert 'id="verify-now"' in admin_client.get("/admin/audit/").get_data(as_text=True)
    assert 'id="verify-now"' not in auditor_client.get("/admin/audit/").get_data(as_text=True)
    assert auditor_client.post("/admin/audit/verify").status_code == 403
    assert admin_client.post("/admin/audit/verify", csrf=False).status_code == 400
    assert chaincheck.last() is None and _chain_events() == []

    resp = admin_client.post("/admin/audit/verify")
    assert resp.status_code == 303 and "/admin/audit/?job=" in resp.headers["Location"]
    # The check passed: that it ran, who asked and how many rows verified are in the trail too.
    assert _chain_events() == [
        ("audit.verify_requested", "admin", "", "success"),
        ("audit.verify_passed", "admin", "", "success"),
    ]
    passed = db.session.execute(
        text("SELECT seq, detail FROM audit_event WHERE action = 'audit.verify_passed'")
    ).one()
    assert (
        json.loads(passed.detail)
        == {"checked": passed.seq - 1}
        == {"checked": chaincheck.last().checked}
    )
    page = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="chain-verified"' in page and 'id="chain-broken"' not in page

    # On a broken trail, through htmx: the job card says so, and the break is recorded.
    db.session.execute(text("UPDATE audit_event SET detail='{}' WHERE seq = 2"))
    db.session.commit()
    frag = admin_client.post("/admin/audit/verify", headers=HTMX).get_data(as_text=True)
    assert 'id="chain-broken"' in frag and "row 2 was altered" in frag and "<html" not in frag
    assert _chain_events()[2:] == [
        ("audit.verify_requested", "admin", "", "success"),
        ("audit.verify_failed", "admin", "2", "failure"),
    ]
    assert 'id="chain-broken"' in admin_client.get("/admin/audit/").get_data(as_text=True)


def test_a_running_check_is_followed_and_not_started_twice(admin_client):
    from webapp.jobs import service as jobs
    from webapp.trailcheck import service as chaincheck

    _events(1)
    job = jobs.queue(chaincheck.JOB_KIND, "Verify the audit trail")  # queued, not yet run
    db.session.commit()
    frag = admin_client.get(f"/admin/audit/check?job={job.id}", headers=HTMX).get_data(as_text=True)
    assert f'hx-get="/admin/audit/check?job={job.id}"' in frag and "Verifying" in frag
    assert 'id="verify-now"' not in frag
    again = admin_client.post("/admin/audit/verify", headers=HTMX).get_data(as_text=True)
    assert f"already running (job {job.id})" in again and "Verifying" in again
    assert _chain_events() == []


def test_a_running_checks_progress_bar_is_named_by_what_it_shows(admin_client):
    from webapp.jobs import service as jobs
    from webapp.trailcheck import service as chaincheck

    _events(1)
    job = jobs.queue(chaincheck.JOB_KIND, "Verify the audit trail")
    db.session.commit()
    frag = admin_client.get(f"/admin/audit/check?job={job.id}", headers=HTMX).get_data(as_text=True)
    bar = re.search(r"<progress[^>]*>", frag).group(0)
    named = re.search(r'aria-labelledby="([\w-]+)"', bar).group(1)
    assert re.search(rf'<small id="{named}">Verifying the audit trail', frag)


def test_the_list_shows_the_address_an_event_came_from(admin_client):
    """The client's address is in the trail's list, not only in its CSV export: each event from
    a request shows it; work nobody did in person (no request) shows none."""
    _events(1, action="cert.import")
    admin_client.get("/admin/audit/export.csv", environ_base={"REMOTE_ADDR": "198.51.100.23"})
    page = admin_client.get("/admin/audit/").get_data(as_text=True)
    assert "<th>Address</th>" in page
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    export = next(r for r in rows if "audit.export" in r)
    assert '<td class="nowrap">198.51.100.23</td>' in export
    imported = next(r for r in rows if "cert.import" in r)
    assert "198.51.100.23" not in imported and '<td class="nowrap"></td>' in imported


def test_a_certificates_events_point_at_its_orders(admin_client, user):
    """A certificate's revocation, suspension and approval are changes of the order that issued
    it, recorded under that order: the list filtered by the certificate says so and links to the
    order's events (the filter itself keeps to what it names, and so does its export)."""
    from tests.helpers import make_order
    from tests.unit.certs.factory import MiniPki, pem
    from webapp.certificates import service as certificates

    pki = MiniPki()
    _key, cert = pki.leaf("issued.example.com")
    order = make_order("4343")
    row, _ = certificates.add_certificate(
        pem(cert).decode(), source="entrust", order_id=order.id, actor=user["admin"]
    )
    audit.record("order.revoke", actor=user["admin"], object_type="order", object_id=order.id)
    db.session.commit()
    page = admin_client.get(f"/admin/audit/?object=Certificate:{row.id}").get_data(as_text=True)
    note = re.search(r'<p class="muted" id="issuing-order">(.*?)</p>', page, re.S)
    assert note and f"issued by order {order.id}" in note.group(1)
    link = re.search(r'href="([^"]+)"', note.group(1)).group(1)
    assert f"object=order:{order.id}" in link.replace("%3A", ":")
    listed = admin_client.get(html.unescape(link)).get_data(as_text=True)
    assert "order.revoke" in listed
    # Shown in place too; a certificate of no order, another object or a bad id: no note.
    frag = admin_client.get(f"/admin/audit/?object=certificate:{row.id}", headers=HTMX)
    assert 'id="issuing-order"' in frag.get_data(as_text=True)
    for other in (
        f"order:{order.id}",
        "certificate",
        "certificate:99999",
        "certificate:x1",
        "certificate:" + "9" * 30,
    ):
        page = admin_client.get("/admin/audit/", query_string={"object": other})
        assert 'id="issuing-order"' not in page.get_data(as_text=True), other


def test_a_details_text_is_shown_as_written_but_what_would_hide_or_reorder_it(admin_client):
    detail = {"result": "The certificate is in SSL › Certificates.", "name": "Zoë\u202eevil\u200b"}
    audit.record("cert.note", actor="test", object_type="certificate", object_id=1, detail=detail)
    db.session.commit()
    stored = db.session.query(AuditEvent.detail).filter_by(action="cert.note").scalar()
    assert "\\u203a" in stored  # the stored text (its hash) is unchanged
    page = admin_client.get("/admin/audit/?action=cert.note").get_data(as_text=True)
    cell = re.search(r'<td class="detail"><small>(.*?)</small>', page, re.S).group(1)
    shown = html.unescape(cell)
    assert "SSL › Certificates." in shown and "Zoë" in shown
    assert "\\u202e" in shown and "\\u200b" in shown
    assert "\u202e" not in page and "\u200b" not in page
