"""What every signed-in page costs before its own work: the statements its session check runs."""

import gc
import re

from sqlalchemy import event

from webapp.extensions import db


def _statements_of(app, client, url: str) -> list[str]:
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args):
        seen.append(" ".join(statement.split()))

    db.session.remove()  # the request starts from an empty identity map, as in a server
    gc.collect()
    event.listen(db.engine, "before_cursor_execute", note)
    try:
        resp = client.get(url)
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert resp.status_code == 200, resp.status_code
    return seen


def test_a_signed_in_page_reads_its_user_once_with_the_session(app, admin_client):
    admin_client.get("/jobs/")  # the session's once-a-minute activity note is behind us
    statements = _statements_of(app, admin_client, "/jobs/")
    with_session = [s for s in statements if "FROM user_session" in s]
    assert len(with_session) == 1
    assert "JOIN user AS" in with_session[0].replace('"', "")  # the user comes with its session
    user_reads = [s for s in statements if "FROM user " in s.replace('"', "") + " "]
    assert user_reads == [], user_reads


def test_the_orders_list_reads_what_it_shows_and_no_settings(app, admin_client):
    from datetime import timedelta

    from tests.helpers import make_order
    from webapp.dbtypes import utcnow

    with app.app_context():
        now = utcnow()
        for n in range(3):
            make_order(
                f"500000{n}",
                sans=f"a{n}.example.com,b{n}.example.com",
                friendly_name=f"Shop {n}",
                expires_at=now + timedelta(days=10 + n),
                last_checked_at=now,
                details='{"secret": "not for the list"}',
            )
    statements = _statements_of(app, admin_client, "/entrust/?sort=checked&dir=desc")
    listed = [s for s in statements if "FROM ca_order" in s]
    assert listed, statements
    for column in ("search_text", "details", "request", "next_check_at", "api_key_sealed"):
        assert not any(re.search(rf"\.{column}\b", s) for s in listed), (column, listed)
    assert not any("FROM setting" in s for s in statements), statements
    # Every column the list shows was read with its row: the page made no statement a row.
    assert len(statements) == len(_statements_of(app, admin_client, "/entrust/?per_page=25"))


def test_the_csr_list_reads_what_it_shows(app, admin_client, user):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from webapp import pki
    from webapp.csrs import service as csrs

    # Made by the viewer and by another user; each is named beside their CSRs.
    makers = ["operator", "admin", "operator"]
    with app.app_context():
        for n, maker in enumerate(makers):
            csr = pki.build_csr(
                ec.generate_private_key(ec.SECP256R1()),
                {"CN": f"list{n}.example.com"},
                pki.SanSet(),
            )
            csrs.import_csr(user[maker], csr.public_bytes(serialization.Encoding.PEM))
    statements = _statements_of(app, admin_client, "/csrs/")
    listed = [s for s in statements if "FROM csr " in s + " "]
    assert listed, statements
    for column in ("pem", "subject", "public_key_id", "signature_algorithm"):
        assert not any(re.search(rf"\bcsr\.{column}\b", s) for s in listed), (column, listed)
    # The names come with the rows: no statement reads the users on its own.
    others = [s for s in statements if s not in listed and "FROM user_session" not in s]
    assert others == [], others
    page = admin_client.get("/csrs/").get_data(as_text=True)
    for n, maker in enumerate(makers):
        assert re.search(rf"list{n}\.example\.com</a>.*?by {maker}</small>", page, re.S), maker


def test_the_credential_drop_downs_read_names_not_secrets(app, admin_client):
    """The orders list and the Organizations, Domains and Products tabs offer every credential in
    a drop-down: they read its name and state, not its sealed key and certificates."""
    from tests.helpers import make_order

    with app.app_context():
        make_order("5000001")  # and its stand-in credential
    secrets = ("api_key_sealed", "client_key_sealed", "client_cert_pem", "ca_bundle_pem")
    for url in (
        "/entrust/",
        "/entrust/manage/organizations",
        "/entrust/manage/domains",
        "/entrust/manage/products",
    ):
        html = admin_client.get(url).get_data(as_text=True)
        assert ">Stand-in</option>" in html, url
        statements = _statements_of(app, admin_client, url)
        read = [s for s in statements if "FROM ecs_credential" in s]
        assert read, (url, statements)
        for column in secrets:
            assert not any(re.search(rf"\.{column}\b", s) for s in read), (url, column, read)


def test_deleting_many_orders_costs_the_statements_of_one(app, admin_client):
    """Delete (local only) of many selected orders writes their audit events together: one
    statement per order (four, with the head of the trail) made 1,000 orders take 3.3 s at
    100,000 rows, holding the write lock all along. The trail stays one valid chain."""
    from sqlalchemy import func, select

    from tests.helpers import make_order
    from webapp.audit import service as audit
    from webapp.audit.models import AuditEvent

    def statements_deleting(count: int, first: int) -> int:
        with app.app_context():
            ids = [
                make_order(str(first + n), common_name=f"o{first + n}.example.com").id
                for n in range(count)
            ]
        seen: list[str] = []

        def note(_conn, _cursor, statement, *_args):
            seen.append(statement)

        db.session.remove()
        event.listen(db.engine, "before_cursor_execute", note)
        try:
            data = {"order": ids, "step": "delete", "confirm": "1"}
            assert admin_client.post("/entrust/delete", data=data).status_code == 303
        finally:
            event.remove(db.engine, "before_cursor_execute", note)
        return len(seen)

    assert statements_deleting(40, 7_000_000) == statements_deleting(2, 7_100_000)
    with app.app_context():
        assert audit.verify().ok
        deleted = select(func.count()).where(AuditEvent.action == "order.delete")
        assert db.session.execute(deleted).scalar_one() == 42
