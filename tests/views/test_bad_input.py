"""The answers that were 500s, and input without bounds (CD-7 #4, #13): each gets a clear
message now and stores nothing it should not. The property-based sweep over every route and form
(tests/reliability/test_bad_input_sweep.py) repeats this on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
import re

import pytest
from sqlalchemy import func, select

from tests.helpers import HTMX
from webapp.audit.models import AuditEvent
from webapp.auth.models import LoginAttempt, User
from webapp.credentials.models import EcsCredential
from webapp.extensions import db

BIG = "9223372036854775808"  # 2**63: no column holds it (PostgreSQL's INTEGER: up to 2**31 - 1)


def _count(model) -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize(
    "url,status",
    [
        (f"/jobs/{BIG}", 404),
        ("/jobs/2147483648", 404),
        ("/jobs/2147483647", 404),
        ("/admin/users/%EF%BC%91", 404),  # a full-width 1: ids are ASCII digits
        ("/jobs/\u0661", 404),
        # A forged cursor with a number beyond the column: the page by its number.
        (
            "/admin/audit/?page=2&after=WyJhdWRpdF9ldmVudC5zZXEtIixbOTIyMzM3MjAzNjg1NDc3NTgwOF1d",
            200,
        ),
        (f"/certificates/{BIG}", 404),
        (f"/csrs/{BIG}", 404),
        (f"/admin/users/{BIG}", 404),
        (f"/entrust/manage/credentials/{BIG}", 404),
        (f"/entrust/manage/?job={BIG}", 200),
        (f"/entrust/manage/organizations?credential={BIG}&job={BIG}", 200),
        (f"/certificates/?page={BIG}&per_page={BIG}", 200),
        ("/certificates/?expiry=²", 200),
        ("/certificates/?expiry=١٢", 200),
        ("/admin/audit/?until=9999-12-31", 200),
        ("/admin/audit/export.csv?until=9999-12-31&since=0001-01-01", 200),
        ("/admin/audit/?endpoint=x", 200),
        ("/admin/audit/?_method=POST&_external=1&_anchor=x", 200),
        ("/admin/audit/export.csv?endpoint=x", 200),
        ("/csrs/?endpoint=x&_method=POST", 200),
        ("/certificates/?endpoint=x&sort=cn&_scheme=ftp", 200),
        ("/entrust/manage/domains?endpoint=x&_method=POST", 200),
    ],
)
def test_answers_that_were_500s(admin_client, url, status):
    resp = admin_client.get(url)
    assert resp.status_code == status, (url, resp.status_code)
    if resp.mimetype == "text/html" and status == 200:
        assert admin_client.get(url, headers=HTMX).status_code == 200


def test_over_long_and_nul_query_values_are_refused_in_words(admin_client):
    long = admin_client.get("/certificates/?q=" + "a" * 1001)
    assert long.status_code == 413 and "“q” is 1,001 characters long" in long.get_data(True)
    assert "Too long" in long.get_data(True) and "File too large" not in long.get_data(True)
    nul = admin_client.get("/csrs/?q=a%00b")
    assert nul.status_code == 400 and "NUL character" in nul.get_data(True)
    frag = admin_client.get("/certificates/?q=a%00b", headers=HTMX)
    assert frag.status_code == 400 and frag.headers["HX-Retarget"] == "#banner"


def _stored(database: str) -> int:
    """The database file's size once the write-ahead log is folded in (the log itself holds
    whole pages per commit, so its size says little about what was stored)."""
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(database)


@pytest.mark.sqlite_only
def test_ten_sign_ins_with_a_4_mib_name_store_nothing(client, app):
    database = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    events, attempts = _count(AuditEvent), _count(LoginAttempt)
    for _ in range(10):
        resp = client.post("/login", data={"username": "n" * (4 * 1024 * 1024), "password": "x"})
        assert resp.status_code == 413
        assert "“username” is 4,194,304 characters long" in resp.get_data(as_text=True)
    assert _count(AuditEvent) == events and _count(LoginAttempt) == attempts
    size = _stored(database)
    # A 60 KiB name (under the form bound) is refused as a wrong sign-in, stored bounded.
    for i in range(10):
        resp = client.post("/login", data={"username": f"{i}" * 60_000, "password": "x"})
        assert resp.status_code == 401 and "Wrong user name or password." in resp.get_data(True)
    grown = _stored(database) - size
    assert grown < 256 * 1024, grown  # ten names stored whole would take 600 KB
    rows = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(10))
    for event in rows.scalars():
        assert len(event.actor_name) <= 64 and len(event.object_id) <= 64
        assert len(event.detail) <= 4000


def test_login_names_too_long_or_strange_are_wrong_sign_ins(client):
    for name in ("a" * 65, "ad min", "admin\u202e", "x\x1b[31m"):
        resp = client.post("/login", data={"username": name, "password": "whatever pw"})
        assert resp.status_code == 401 and "Wrong user name or password." in resp.get_data(True)
    tried = [a.username for a in db.session.execute(select(LoginAttempt)).scalars()]
    # No user's names: each recorded as a fingerprint of its own, never as typed.
    assert len(set(tried)) == 4
    assert all(re.fullmatch(r"\?unknown:[0-9a-f]{12}", name) for name in tried), tried
    audited = db.session.execute(
        select(AuditEvent.actor_name).where(AuditEvent.action == "auth.login_failed")
    ).scalars()
    assert sorted(audited) == sorted(tried)  # no line break or direction mark in the trail


def test_user_fields_have_their_columns_bounds(admin_client):
    users = _count(User)
    base = {"username": "newbie", "role": "operator", "password": "long enough pw"}
    for extra, field, text in [
        ({"full_name": "F" * 121}, "full_name", "at most 120 fit"),
        ({"email": "e" * 250 + "@x.io"}, "email", "at most 254 fit"),
        ({"full_name": "Eve\u202eevil"}, "full_name", "control character"),
        ({"username": "u" * 65}, "username", "1-64 letters"),
    ]:
        resp = admin_client.post("/admin/users/new", data={**base, **extra})
        body = resp.get_data(as_text=True)
        assert resp.status_code == 422 and text in body, (extra, resp.status_code)
        assert f'id="{field}-error"' in body
    nul = admin_client.post("/admin/users/new", data={**base, "email": "a\x00@x.io"})
    assert nul.status_code == 400 and "NUL character" in nul.get_data(as_text=True)
    assert _count(User) == users


def test_credential_fields_have_their_columns_bounds(admin_client):
    base = {
        "name": "Bounded",
        "api_user": "user",
        "api_key": "key",
        "base_url": "http://127.0.0.1:9/enterprise/v2/",
        "proxy": "",
    }
    cases = [
        ({"api_user": "u" * 201}, "at most 200 fit"),
        ({"base_url": "http://h.example/" + "p" * 500}, "at most 500 fit"),
        ({"proxy": "http://p.example/" + "p" * 500}, "at most 500 fit"),
        ({"name": "n" * 101}, "at most 100 fit"),
        ({"name": "two\r\nlines"}, "control character"),
        ({"api_user": "usér€"}, "Latin-1"),
        ({"api_key": "kéy—"}, "Latin-1"),
        ({"api_user": "a:b"}, "colon"),
        # The API key would cross the network in clear text (Test Login sends it too).
        ({"base_url": "http://ecs.example/enterprise/v2/"}, "as an https:// URL"),
        # Read as 127.0.0.1 by urlsplit, but the HTTP client connects to ecs.example (a
        # backslash ends its host): the key would go there in clear.
        ({"base_url": "http://ecs.example\\@127.0.0.1/enterprise/v2/"}, "as an http:// or"),
        ({"base_url": "http://127.0.0.1\\@ecs.example/enterprise/v2/"}, "as an http:// or"),
        ({"proxy": "http://proxy.example\\@127.0.0.1:3128"}, "Enter the HTTPS proxy as an"),
    ]
    for extra, text in cases:
        urls = ["/entrust/manage/credentials/new"]
        if "name" not in extra:  # Test Login stores nothing: only what it sends is checked
            urls.append("/entrust/manage/credentials/test")
        for url in urls:
            resp = admin_client.post(url, data={**base, **extra})
            body = resp.get_data(as_text=True)
            assert resp.status_code == 422 and text in body, (url, extra, resp.status_code)
    nul = admin_client.post("/entrust/manage/credentials/new", data={**base, "name": "a\x00"})
    assert nul.status_code == 400
    assert _count(EcsCredential) == 0


def test_a_stored_key_http_cannot_send_is_refused_in_words(app, user):
    from webapp.credentials import clients
    from webapp.credentials import service as credentials
    from webapp.security.secretbox import current_box

    cred, _ = credentials.create(
        user["admin"],
        credentials.CredentialInput(name="Old", api_user="u", api_key="fine"),
        start_sync=False,
    )
    # Saved before keys were checked: a key with characters HTTP Basic cannot carry.
    cred.api_key_sealed = current_box().seal("k€y", clients.API_KEY_CTX)
    db.session.commit()
    with pytest.raises(clients.ClientUnavailable, match="enter the API key again"):
        clients.client_for(cred)
    # Saved before the base URL's host was read as the HTTP client reads it: it connects to
    # ecs.example, in clear, where the form now refuses the URL.
    cred.api_key_sealed = current_box().seal("fine", clients.API_KEY_CTX)
    cred.base_url = "http://ecs.example\\@127.0.0.1/enterprise/v2/"
    db.session.commit()
    with pytest.raises(clients.ClientUnavailable, match="plain http:// off this machine"):
        clients.client_for(cred)


def test_pasted_certificates_may_be_as_long_as_a_file(admin_client):
    from tests.unit.certs.factory import MiniPki, pem

    t = MiniPki()
    bundle = b"".join(pem(t.leaf(f"h{i}.example.com")[1]) for i in range(110))
    assert len(bundle) > 64 * 1024
    resp = admin_client.post("/certificates/import", data={"pem_text": bundle.decode()})
    assert resp.status_code == 303
    too_long = admin_client.post("/certificates/import", data={"pem_text": "A" * (1024 * 1024 + 1)})
    assert too_long.status_code == 413 and "“pem_text”" in too_long.get_data(as_text=True)


def test_pasted_certificates_in_the_upload_form_may_be_as_long_as_a_file(admin_client):
    # The import form has a file input, so a browser sends it as multipart/form-data.
    def send(text: str):
        return admin_client.post(
            "/certificates/import",
            data={"pem_text": text, "files": (io.BytesIO(b""), "")},
            content_type="multipart/form-data",
        )

    long = send("A" * 600_000)  # longer than a multipart field's 500 kB by default
    assert long.status_code == 422, long.get_data(as_text=True)
    assert "not a certificate file CertDesk can read" in long.get_data(as_text=True)
    too_long = send("A" * (1024 * 1024 + 1))
    assert too_long.status_code == 413
    assert "“pem_text” is 1,048,577 characters long" in too_long.get_data(as_text=True)
    assert "File too large" not in too_long.get_data(as_text=True)


def test_too_many_files_at_once_is_said_as_such(admin_client):
    files = [(io.BytesIO(b"x"), f"c{i}.pem") for i in range(1001)]
    resp = admin_client.post(
        "/certificates/import", data={"files": files}, content_type="multipart/form-data"
    )
    text = resp.get_data(as_text=True)
    assert resp.status_code == 413
    assert "more than 1,000 fields and files" in text and "MiB limit" not in text


def test_a_csr_holds_at_most_250_names(operator_client):
    from webapp.csrs.models import Csr

    sans = " ".join(f"h{i}.example.com" for i in range(251))
    resp = operator_client.post(
        "/csrs/new",
        data={"key_type": "p256", "hash": "sha256", "CN": "a.example.com", "sans": sans},
    )
    assert resp.status_code == 422 and "at most 250" in resp.get_data(as_text=True)
    assert _count(Csr) == 0
