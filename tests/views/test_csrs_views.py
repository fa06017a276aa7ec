"""SSL > CSRs views: create, live name check, import with key, detail, downloads, roles, delete."""

from __future__ import annotations

import io
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import func, select

from tests.helpers import HTMX
from tests.unit.certs.factory import ec_key, key_pem, padded_csr_der
from webapp import pki
from webapp.audit.models import AuditEvent
from webapp.csrs.models import Csr
from webapp.extensions import db
from webapp.keys import service as keys
from webapp.keys.models import PrivateKey

FORM = {
    "key_type": "p256",
    "hash": "sha256",
    "CN": "portal.example.com",
    "O": "Example",
    "C": "US",
    "sans": "api.example.com 10.0.0.5",
}


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _create(client, **over):
    return client.post("/csrs/new", data={**FORM, **over})


def test_create_csr(operator_client):
    resp = _create(operator_client)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    row = db.session.execute(select(Csr)).scalar_one()
    assert row.common_name == "portal.example.com" and row.private_key_id
    assert row.san_list == ["portal.example.com", "api.example.com", "10.0.0.5"]
    csr = x509.load_pem_x509_csr(operator_client.get(f"/csrs/{row.id}/csr.pem").data)
    assert csr.is_signature_valid
    page = operator_client.get(f"/csrs/{row.id}").get_data(as_text=True)
    assert (
        "ECDSA P-256" in page
        and "BEGIN CERTIFICATE REQUEST" in page
        and "Download private key" in page
    )
    assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "csr.create")).scalar()
    listing = operator_client.get("/csrs/?q=portal", headers=HTMX).get_data(as_text=True)
    assert "portal.example.com" in listing and "<html" not in listing


def test_the_empty_list_says_what_to_do_next(operator_client, auditor_client):
    empty = operator_client.get("/csrs/").get_data(as_text=True)
    assert "No CSRs yet." in empty
    assert '<a href="/csrs/new">Create a key and CSR</a>' in empty
    assert '<a href="/csrs/import">import a CSR</a>' in empty
    assert "Create a key and CSR</a>" not in auditor_client.get("/csrs/").get_data(as_text=True)
    assert _create(operator_client).status_code == 303
    none = operator_client.get("/csrs/?q=nothing-like-this", headers=HTMX).get_data(as_text=True)
    assert "No CSRs match this search." in none and '<a href="/csrs/">Show all CSRs</a>' in none


def test_search_finds_names_that_start_or_end_with_the_text(operator_client):
    assert _create(operator_client).status_code == 303
    for q, found in [
        ("portal", True),
        ("API.example", True),  # a SAN, any case
        ("example.com", True),  # ends with
        ("10.0.0", True),
        ("xample", False),  # "contains" is not offered: it would read every row
        ("%", False),
    ]:
        body = operator_client.get(f"/csrs/?q={q}", headers=HTMX).get_data(as_text=True)
        assert ("portal.example.com" in body) is found, q


def test_the_list_controls_read_as_on_the_other_lists(operator_client):
    page = operator_client.get("/csrs/").get_data(as_text=True)
    # "Filter", as on Certificates, orders, the catalog and the audit trail (not "Search").
    assert '<button type="submit">Filter</button>' in page and ">Search</button>" not in page
    # The sort is by creation date; "Newest" beside "Ascending" read as a contradiction.
    assert "selected>Created</option>" in page and ">Newest<" not in page


def test_create_refuses_bad_input(operator_client):
    for over, field, text in [
        ({"CN": ""}, "CN", "common name"),
        ({"sans": "bad..example.com"}, "sans", "not a valid DNS name"),
        ({"key_type": "dsa"}, "key_type", "key types"),
        ({"C": "USA"}, "C", "two letters"),
        ({"hash": "md5"}, "hash", "SHA-256"),
        ({"CN": "\x01"}, "CN", "control character"),
        ({"O": "Acme\u202e moc.evil"}, "O", "text-direction override"),
        ({"OU": "Web\nOps"}, "OU", "line break"),
        # The CN is the certificate's host name or IP address: a CSR for another went out with
        # no SAN and was refused only when ordered.
        ({"CN": "*.*.example.com"}, "CN", "a wildcard may only be the whole left-most label"),
        ({"CN": "my server"}, "CN", "The common name is the certificate&#39;s host name"),
        ({"CN": "fe80::1%eth0"}, "CN", "an address with a zone"),
        # A SAN or subject address a certificate cannot hold was a 500.
        ({"sans": "jöhn@example.com"}, "sans", "jöhn@example.com: not a valid e-mail address"),
        ({"sans": "jo<hn>@example.com"}, "sans", "not a valid e-mail address"),
        ({"emailAddress": "jöhn@example.com"}, "emailAddress", "E-mail: jöhn@example.com: not"),
        ({"emailAddress": "not-an-email"}, "emailAddress", "not a valid e-mail address"),
    ]:
        resp = _create(operator_client, **over)
        assert resp.status_code == 422, field
        body = resp.get_data(as_text=True)
        assert text in body and 'aria-invalid="true"' in body
    assert _count(Csr) == 0 and _count(PrivateKey) == 0


def test_the_common_name_and_the_sans_are_kept_as_certificates_hold_them(operator_client):
    """A CN typed with capitals, a final dot or in Unicode goes into the CSR as its SAN does (a
    certificate's CN is one of its SANs), an IP address CN also as an IP SAN, and a name given
    twice in two forms is one SAN."""
    cases = [
        (
            {"CN": "WWW.Example.COM.", "sans": "www.example.com. WWW.example.com"},
            "www.example.com",
            ["www.example.com"],
        ),
        (
            {"CN": "bücher.example", "sans": "xn--bcher-kva.example Bücher.example"},
            "xn--bcher-kva.example",
            ["xn--bcher-kva.example"],
        ),
        ({"CN": "192.0.2.1", "sans": ""}, "192.0.2.1", ["192.0.2.1"]),
        (
            {"CN": "a.example.com", "sans": "Ann@Mail.Example.com ann@mail.example.com"},
            "a.example.com",
            ["a.example.com", "ann@mail.example.com"],
        ),
    ]
    for over, cn, names in cases:
        resp = _create(operator_client, **over)
        assert resp.status_code == 303, (over, resp.get_data(as_text=True)[-600:])
        row = db.session.execute(select(Csr).order_by(Csr.id.desc())).scalars().first()
        csr = x509.load_pem_x509_csr(row.pem.encode())
        [held] = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        assert held.value == cn, over
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(getattr(n.value, "compressed", n.value)) for n in sans] == names, over


def test_a_country_typed_as_a_name_is_refused_and_kept_not_cut_to_another_code(operator_client):
    page = operator_client.get("/csrs/new").get_data(as_text=True)
    field = re.search(r'<input name="C"[^>]*>', page).group(0)
    assert 'maxlength="2"' not in field and 'pattern="[A-Za-z]{2}"' in field  # not cut short
    assert 'aria-describedby="C-hint"' in field and "(two-letter code: US, DE, GB)" in page
    resp = _create(operator_client, C="Germany")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "two letters" in body
    assert re.search(r'<input name="C" value="Germany"', body)
    assert _count(Csr) == 0


def test_a_refused_name_is_said_once(operator_client):
    """The field's own error and the names check under it said the same thing twice."""
    body = _create(operator_client, sans="www.example.com, bad..example.com").get_data(as_text=True)
    assert body.count("bad..example.com: not a valid DNS name") == 1
    assert '<small class="field-error" id="sans-error">bad..example.com: not' in body
    # Typed afterwards, the live check still says it.
    frag = operator_client.get(
        "/csrs/check-names", query_string={"CN": "a.example.com", "sans": "x..y"}, headers=HTMX
    ).get_data(as_text=True)
    assert "x..y: not a valid DNS name" in frag


def test_name_check_fragment(operator_client, auditor_client):
    r = operator_client.get(
        "/csrs/check-names", query_string={"CN": "example.com", "sans": "x..y"}, headers=HTMX
    )
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in body
    assert "www.example.com" in body and "data-fill-sans" in body and "not a valid DNS name" in body
    assert auditor_client.get("/csrs/check-names?CN=a.com").status_code == 403


def _csr_pem(key, cn="import.example.com"):
    csr = pki.build_csr(key, {"CN": cn}, pki.SanSet(dns=[cn]))
    return csr.public_bytes(serialization.Encoding.PEM)


def test_import_csr_with_and_without_key(admin_client):
    key = ec_key()
    data = {
        "csr_text": _csr_pem(key).decode(),
        "key_text": key_pem(key, "key-pass-1").decode(),
        "key_password": "key-pass-1",
    }
    assert admin_client.post("/csrs/import", data=data).status_code == 303
    row = db.session.execute(select(Csr)).scalar_one()
    assert row.source == "imported" and row.private_key_id
    # upload, no key
    other = ec_key()
    resp = admin_client.post(
        "/csrs/import",
        data={"csr_file": (io.BytesIO(_csr_pem(other, "upload.example.com")), "u.csr")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 303 and _count(Csr) == 2 and _count(PrivateKey) == 1


def test_the_same_csr_imported_again_is_one_csr_and_its_key_joins_it(admin_client):
    """A CSR imported twice made two rows; now the second is refused naming the first, unless
    it brings the key the first lacked, which joins it. A CSR of the same key with other names
    is another CSR."""
    key = ec_key()
    pem = _csr_pem(key, "again.example.com").decode()
    assert admin_client.post("/csrs/import", data={"csr_text": pem}).status_code == 303
    first = db.session.execute(select(Csr)).scalar_one()
    again = admin_client.post("/csrs/import", data={"csr_text": pem})
    assert again.status_code == 422
    assert f"This CSR is in CertDesk already, as CSR #{first.id} (again.example.com)." in (
        again.get_data(as_text=True)
    )
    with_key = admin_client.post(
        "/csrs/import", data={"csr_text": pem, "key_text": key_pem(key).decode()}
    )
    assert with_key.status_code == 303 and with_key.headers["Location"].endswith(f"/{first.id}")
    db.session.refresh(first)
    assert first.private_key_id is not None and _count(Csr) == 1 and _count(PrivateKey) == 1
    assert (
        admin_client.post(
            "/csrs/import", data={"csr_text": pem, "key_text": key_pem(key).decode()}
        ).status_code
        == 422
    )
    other = _csr_pem(key, "other.example.com").decode()
    assert admin_client.post("/csrs/import", data={"csr_text": other}).status_code == 303
    assert _count(Csr) == 2 and _count(PrivateKey) == 1


def test_import_refuses_mismatch_and_bad_input(admin_client):
    key, wrong = ec_key(), ec_key()
    cases = [
        (
            {"csr_text": _csr_pem(key).decode(), "key_text": key_pem(wrong).decode()},
            "does not belong to the CSR",
        ),
        ({"csr_text": "hello"}, "not a readable CSR"),
        (
            {"csr_text": _csr_pem(key).decode(), "key_text": key_pem(key, "pw-123456").decode()},
            "enter its password",
        ),
        (
            {
                "csr_text": _csr_pem(key).decode(),
                "key_text": key_pem(key, "pw-123456").decode(),
                "key_password": "bad",
            },
            "Wrong password",
        ),
        ({"csr_text": _csr_pem(key).decode(), "key_text": "junk"}, "not a readable private key"),
    ]
    for data, text in cases:
        resp = admin_client.post("/csrs/import", data=data)
        body = resp.get_data(as_text=True)
        assert resp.status_code == 422 and text in body, text
        if "key_text" in data:  # the key sent is never sent back, not even on an error
            key_body = data["key_text"].split("-----")[2] if "-----" in data["key_text"] else ""
            assert data["key_text"] not in body and (not key_body or key_body not in body)
    assert _count(Csr) == 0 and _count(PrivateKey) == 0


def test_import_refuses_a_csr_with_more_names_than_a_real_one(operator_client, monkeypatch):
    """Each name is a row, and the lists show them: a CSR of too many names is refused."""
    from webapp.csrs.models import CsrName

    monkeypatch.setattr(pki, "MAX_NAMES", 5)
    key = ec_key()
    names = [f"n{i}.example.com" for i in range(6)]
    many = pki.build_csr(key, {"CN": "n0.example.com"}, pki.SanSet(dns=names))
    before = _count(AuditEvent)
    resp = operator_client.post(
        "/csrs/import",
        data={"csr_file": (io.BytesIO(many.public_bytes(serialization.Encoding.DER)), "m.csr")},
        content_type="multipart/form-data",
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "This CSR has 6 subject alternative names; CertDesk takes at most 5." in body
    assert _count(Csr) == 0 and _count(CsrName) == 0 and _count(AuditEvent) == before
    five = pki.build_csr(key, {"CN": "n0.example.com"}, pki.SanSet(dns=names[:5]))
    pasted = five.public_bytes(serialization.Encoding.PEM).decode()
    resp = operator_client.post("/csrs/import", data={"csr_text": pasted})
    assert resp.status_code == 303 and _count(CsrName) == 5


def test_a_csr_uploaded_just_under_the_bound_shows_its_page(operator_client):
    """Stored as PEM, a CSR uploaded as DER takes a third more than the upload bound allows:
    its page reads it without that bound."""
    body, stored = padded_csr_der("big.example.com", 900_000)
    assert len(body) < pki.MAX_FILE_BYTES < len(stored)
    resp = operator_client.post(
        "/csrs/import",
        data={"csr_file": (io.BytesIO(body), "big.csr")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 303
    row = db.session.execute(select(Csr)).scalar_one()
    page = operator_client.get(f"/csrs/{row.id}")
    assert page.status_code == 200 and "big.example.com" in page.get_data(as_text=True)


def test_the_list_shows_the_first_names_of_a_csr_and_how_many_more(operator_client):
    names = [f"n{i}.example.com" for i in range(10)]
    csr = pki.build_csr(ec_key(), {"CN": "n0.example.com"}, pki.SanSet(dns=names))
    pasted = csr.public_bytes(serialization.Encoding.PEM).decode()
    assert operator_client.post("/csrs/import", data={"csr_text": pasted}).status_code == 303
    page = operator_client.get("/csrs/").get_data(as_text=True)
    assert "n0.example.com, n1.example.com, n2.example.com, n3.example.com" in page
    assert '<span class="muted">+6 more</span>' in page and "n4.example.com" not in page


def test_a_private_key_pasted_as_the_csr_is_never_shown_again(admin_client):
    key, other = ec_key(), ec_key()
    secret = key_pem(key).decode()
    body_of = secret.split("-----")[2]
    resp = admin_client.post("/csrs/import", data={"csr_text": secret})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "This is a private key, not a CSR" in page
    assert body_of not in page
    # The CSR and its key pasted together in the CSR's box, with another error on the form.
    both = _csr_pem(key).decode() + secret
    resp = admin_client.post(
        "/csrs/import", data={"csr_text": both, "key_text": key_pem(other).decode()}
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "does not belong to the CSR" in page
    assert body_of not in page
    assert _count(Csr) == 0 and _count(PrivateKey) == 0


def test_a_private_key_in_any_shape_pasted_as_the_csr_is_never_shown_again(admin_client):
    from tests.unit.certs.factory import pasted_private_keys

    for shape, (secret, material) in pasted_private_keys().items():
        resp = admin_client.post("/csrs/import", data={"csr_text": secret})
        page = resp.get_data(as_text=True)
        assert not [m for m in material if m in page], shape
        assert resp.status_code == 422 and 'id="csr-error"' in page, shape
        assert "This is a private key, not a CSR" in page, shape
    assert _count(Csr) == 0 and _count(PrivateKey) == 0


def test_import_starts_at_the_csr_and_returns_to_the_wrong_field(admin_client):
    blank = admin_client.get("/csrs/import").get_data(as_text=True)
    assert re.search(r'<textarea name="csr_text" [^>]*autofocus>', blank)
    key = ec_key()
    resp = admin_client.post(
        "/csrs/import",
        data={
            "csr_text": _csr_pem(key).decode(),
            "key_text": key_pem(key, "pw-123456").decode(),
            "key_password": "bad",
        },
    )
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and body.count("autofocus") == 1
    assert re.search(
        r'<input type="password" name="key_password" [^>]*'
        r'aria-describedby="key_password-error" autofocus>',
        body,
    )
    assert '<small class="field-error" id="key_password-error">Wrong password' in body


def test_key_download_roles(app, admin_client, operator_client, auditor_client, user):
    assert _create(admin_client).status_code == 303
    admins = db.session.execute(select(Csr)).scalar_one()
    pw = {"format": "pkcs8", "password": "export-pass", "password2": "export-pass"}
    # auditor: never; operator: not another's key
    assert auditor_client.post(f"/csrs/{admins.id}/key", data=pw).status_code == 403
    assert operator_client.post(f"/csrs/{admins.id}/key", data=pw).status_code == 403
    # Each is told why: the operator's role downloads keys, but only those they made.
    page = operator_client.get(f"/csrs/{admins.id}").get_data(as_text=True)
    assert "Download private key" not in page and "role does not allow" not in page
    assert "Only an administrator or the user who made this key may download it." in page
    page = auditor_client.get(f"/csrs/{admins.id}").get_data(as_text=True)
    assert "Download private key" not in page
    assert "Your role does not allow downloading this key." in page
    # the admin: PKCS#8 and PKCS#12, audited
    r = admin_client.post(f"/csrs/{admins.id}/key", data=pw)
    assert r.status_code == 200 and b"ENCRYPTED PRIVATE KEY" in r.data
    key = serialization.load_pem_private_key(r.data, b"export-pass")
    r12 = admin_client.post(f"/csrs/{admins.id}/key", data={**pw, "format": "pkcs12"})
    assert (
        pkcs12.load_pkcs12(r12.data, b"export-pass").key.private_numbers() == key.private_numbers()
    )
    events = (
        db.session.execute(select(AuditEvent).where(AuditEvent.action == "key.download"))
        .scalars()
        .all()
    )
    assert len(events) == 2 and "export-pass" not in "".join(e.detail for e in events)
    short = admin_client.post(
        f"/csrs/{admins.id}/key", data={**pw, "password": "x", "password2": "x"}
    )
    assert short.status_code == 422 and "at least 8" in short.get_data(as_text=True)
    # the operator's own key: allowed
    assert _create(operator_client, CN="mine.example.com").status_code == 303
    mine = db.session.execute(select(Csr).where(Csr.common_name == "mine.example.com")).scalar_one()
    assert operator_client.post(f"/csrs/{mine.id}/key", data=pw).status_code == 200


def test_a_refused_key_download_keeps_the_format_chosen(admin_client):
    """The passwords differed: the page came back set to PKCS#8 again, and the next try
    downloaded a PEM key where a .p12 was asked for."""
    assert _create(admin_client).status_code == 303
    row = db.session.execute(db.select(Csr)).scalar_one()
    data = {"format": "pkcs12", "password": "long enough one", "password2": "long enough two"}
    resp = admin_client.post(f"/csrs/{row.id}/key", data=data)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert '<option value="pkcs12" selected>PKCS#12 (.p12)</option>' in body
    assert 'aria-describedby="password2-error"' in body
    assert '<small class="field-error" id="password2-error">' in body
    assert "The passwords differ: type the password in both boxes again." in body
    assert "long enough" not in body  # neither password comes back
    assert re.search(r'<input type="password" name="password" [^>]*autofocus', body)
    assert body.count("autofocus") == 1
    # A first visit starts at PKCS#8.
    page = admin_client.get(f"/csrs/{row.id}").get_data(as_text=True)
    assert '<option value="pkcs12" >PKCS#12 (.p12)</option>' in page


def test_delete_csr(admin_client, auditor_client):
    assert _create(admin_client).status_code == 303
    row = db.session.execute(select(Csr)).scalar_one()
    assert "data-confirm=" in admin_client.get(f"/csrs/{row.id}").get_data(as_text=True)
    assert auditor_client.post(f"/csrs/{row.id}/delete").status_code == 403
    assert admin_client.post(f"/csrs/{row.id}/delete").status_code == 303
    assert _count(Csr) == 0 and _count(PrivateKey) == 0
    assert admin_client.get(f"/csrs/{row.id}").status_code == 404


def test_issued_certificate_links_to_csr_and_key(app, admin_client, user):
    from tests.unit.certs.factory import MiniPki
    from webapp.certificates import service

    assert _create(admin_client).status_code == 303
    row = db.session.execute(select(Csr)).scalar_one()
    key = keys.open_key(row.private_key)
    _, cert = MiniPki().leaf("portal.example.com", key=key)
    cert_row, created = service.add_certificate(cert, source="entrust", actor="scheduler")
    assert created and cert_row.csr_id == row.id and cert_row.private_key_id == row.private_key_id


def test_search_takes_wildcards_literally(app, user):
    """'%' and '_' in the search box are characters, not LIKE wildcards."""
    from webapp.csrs import service as csrs

    for cn in ("ops_team", "opsXteam", "100%-team"):
        csr = pki.build_csr(ec_key(), {"CN": cn}, pki.SanSet())
        csrs.import_csr(user["admin"], csr.public_bytes(serialization.Encoding.PEM))

    def found(q):
        stmt = csrs.list_query(q)
        return sorted(r.common_name for r in db.session.execute(stmt).scalars())

    # A search matches the start or the end of a name; as a wildcard, each would match more.
    assert found("ops_team") == ["ops_team"]
    assert found("100%") == ["100%-team"]
    assert found("_team") == ["ops_team"]
    assert found("%") == []
    assert found("team") == ["100%-team", "opsXteam", "ops_team"]


def test_an_operator_may_not_leave_an_administrators_key_unreachable(admin_client, operator_client):
    assert _create(admin_client).status_code == 303
    row = db.session.execute(select(Csr)).scalar_one()
    csr_id, key_id = row.id, row.private_key_id
    # Nothing else uses the key: deleting the CSR would leave it where no page reaches it.
    resp = operator_client.post(f"/csrs/{csr_id}/delete")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/csrs/{csr_id}")
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Only an administrator or the maker of its private key may delete this CSR" in page
    db.session.expire_all()
    assert _count(Csr) == 1 and db.session.get(PrivateKey, key_id) is not None
    refused = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "csr.delete")
    ).scalar_one()  # the refusal, recorded with its reason
    assert (refused.outcome, refused.actor_name, refused.object_id) == (
        "refused",
        "operator",
        str(csr_id),
    )
    assert "maker of its private key" in refused.detail
    # Once a certificate uses the key, the CSR may go and the key stays with the certificate.
    from tests.unit.certs.factory import MiniPki, pem
    from webapp.keys import service as keys

    pki = MiniPki()
    _, cert = pki.leaf(row.common_name, key=keys.open_key(db.session.get(PrivateKey, key_id)))
    resp = admin_client.post(
        "/certificates/import",
        data={"pem_text": pem(cert).decode()},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 303
    resp = operator_client.post(f"/csrs/{csr_id}/delete")
    assert resp.status_code == 303
    page = operator_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Its private key was kept: a certificate or an order uses it." in page
    db.session.expire_all()
    assert _count(Csr) == 0 and db.session.get(PrivateKey, key_id) is not None
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "csr.delete", AuditEvent.outcome == "success")
    ).scalar_one()
    assert "key_kept" in event.detail and event.actor_name == "operator"


def test_an_operator_deleting_their_own_csr_deletes_its_key(operator_client):
    assert _create(operator_client).status_code == 303
    row = db.session.execute(select(Csr)).scalar_one()
    assert operator_client.post(f"/csrs/{row.id}/delete").status_code == 303
    assert _count(Csr) == 0 and _count(PrivateKey) == 0


def test_deleting_the_csr_of_an_order_in_flight_keeps_the_key_its_certificate_needs(
    operator_client, user, sandbox, fast_clients
):
    """An order waiting for approval, placed with a CSR made in CertDesk: deleting that CSR keeps
    its private key (the order holds it), so the certificate Entrust issues later is linked to
    it. Before, the key went with the CSR and the certificate arrived with no key anywhere."""
    from tests.conftest import link_sandbox, sandbox_order_form
    from webapp.certificates.models import Certificate
    from webapp.orders import lifecycle, placing
    from webapp.orders.models import Order

    sandbox.seed(certificates=0, seed=3)
    cred = link_sandbox(user, sandbox)
    assert _create(operator_client, sans="", O="", C="").status_code == 303
    csr = db.session.execute(select(Csr)).scalar_one()
    key_id = csr.private_key_id
    order = placing.place(
        user["operator"], sandbox_order_form(cred, csr.id, queue_for_approval=True)
    )
    assert order.status == "PENDING"

    page = operator_client.get(f"/csrs/{csr.id}").get_data(as_text=True)
    assert "kept when a certificate or an order uses it" in page
    assert operator_client.post(f"/csrs/{csr.id}/delete").status_code == 303
    db.session.expire_all()
    assert _count(Csr) == 0 and db.session.get(PrivateKey, key_id) is not None
    assert operator_client.get(f"/entrust/{order.id}").status_code == 200

    done = lifecycle.run(
        user["admin"], lifecycle.ACTIONS["approve"], [order.id], lifecycle.Choices()
    )
    assert done.outcomes[0].result == "done"
    db.session.expire_all()
    cert = db.session.execute(select(Certificate)).scalar_one()
    assert cert.order_id == order.id and cert.private_key_id == key_id
    assert db.session.get(Order, order.id).private_key_id == key_id


def test_a_csr_named_outside_ascii_downloads_under_a_name_that_reads(admin_client):
    """A CSR for ünï.example.com was saved as "_n_.example.com.csr": a host name is offered in
    its xn-- form, any other name as it reads (RFC 6266 filename*) beside an ASCII one."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    def imported(cn: str) -> Csr:
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName("www.example.com")]), critical=False
            )
            .sign(ec_key(), hashes.SHA256())
        )
        text = csr.public_bytes(serialization.Encoding.PEM).decode()
        assert admin_client.post("/csrs/import", data={"csr_text": text}).status_code == 303
        return db.session.execute(select(Csr).where(Csr.common_name == cn)).scalar_one()

    resp = admin_client.get(f"/csrs/{imported('ünï.example.com').id}/csr.pem")
    assert resp.status_code == 200
    assert (
        resp.headers["Content-Disposition"] == 'attachment; filename="xn--n-nga1b.example.com.csr"'
    )
    resp = admin_client.get(f"/csrs/{imported('Jürgen Müller').id}/csr.pem")
    assert resp.status_code == 200
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"J_rgen_M_ller.csr\"; filename*=UTF-8''J%C3%BCrgen_M%C3%BCller.csr"
    )


def test_a_format_refused_for_a_key_download_is_tied_to_its_field(admin_client):
    assert _create(admin_client).status_code == 303
    row = db.session.execute(db.select(Csr)).scalar_one()
    data = {"format": "jks", "password": "long enough one", "password2": "long enough one"}
    resp = admin_client.post(f"/csrs/{row.id}/key", data=data)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert '<select name="format" aria-invalid="true" aria-describedby="format-error">' in body
    assert re.search(r'<small class="field-error" id="format-error">[^<]+</small>', body)
