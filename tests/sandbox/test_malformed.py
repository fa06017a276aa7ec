"""Malformed input: a 400 (or a 404 for an id no row can have) in the error envelope, never a
500, and nothing changed. Each case is a request shape that once crashed the sandbox."""

from __future__ import annotations

import base64
import json
import socket
from datetime import date, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from entrust_sandbox.ca import cached_key, csr_pem, make_csr

from .conftest import assert_error

TOO_BIG = "9" * 23  # beyond the store's 64-bit integers


def _csr_without_cn(*names: str) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CertDesk Demo Corp")])
    )
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
    )
    return csr_pem(builder.sign(cached_key("RSA", 2048), hashes.SHA256()))


def _state(api) -> tuple:
    """What an order would change: the number of certificates and every remaining count."""
    total = api.get("certificates", params={"limit": 1}).json()["summary"]["total"]
    inventories = api.get("inventories").json()["inventories"]
    return total, sorted((i["productType"], i["remainingCount"]) for i in inventories)


SMIME = {"certType": "SMIME_ENT", "cn": "Jane Smith", "certEmail": "jane@example.com"}
LONG_EMAIL = "jane." + "x" * 238 + "@example.com"  # 255 characters


@pytest.mark.parametrize(
    "body, field",
    [
        # An internationalised name must come in its xn-- form.
        ({"certType": "STANDARD_SSL", "csr": make_csr("bücher.example.com")[0]}, "csr"),
        (
            {
                "certType": "UC_SSL",
                "csr": make_csr("www.example.com")[0],
                "subjectAltName": ["www.example.com", "bücher.example.com"],
            },
            "subjectAltName",
        ),
        # No CN, and a first name longer than a CN may be.
        ({"certType": "UC_SSL", "csr": _csr_without_cn("x" * 60 + ".example.com")}, "csr"),
        (
            {"certType": "UC_SSL", "csr": make_csr("www.example.com")[0], "clientId": TOO_BIG},
            "clientId",
        ),
        (
            {"certType": "UC_SSL", "csr": make_csr("www.example.com")[0], "clientId": int(TOO_BIG)},
            "clientId",
        ),
        (
            {
                "certType": "UC_SSL",
                "csr": make_csr("www.example.com")[0],
                "org": ["CertDesk Demo Corp"],
            },
            "org",
        ),
        ({"certType": "UC_SSL", "csr": make_csr("www.example.com")[0], "org": {"x": 1}}, "org"),
        (
            {"certType": "UC_SSL", "csr": make_csr("www.example.com")[0], "certLifetime": ["P1Y"]},
            "certLifetime",
        ),
        (
            {"certType": "UC_SSL", "csr": make_csr("www.example.com")[0], "certLifetime": {"a": 1}},
            "certLifetime",
        ),
        # A certType that is no text is named as such, not echoed back.
        ({"certType": ["STANDARD_SSL"], "csr": make_csr("www.example.com")[0]}, "certType"),
        ({"certType": True, "csr": make_csr("www.example.com")[0]}, "certType"),
        ({**SMIME, "password": 12345}, "password"),
        ({**SMIME, "password": "pw", "cn": 5}, "cn"),
        ({**SMIME, "password": "pw", "certEmail": 7}, "certEmail"),
        ({**SMIME, "password": "pw", "certEmail": "jäne@example.com"}, "certEmail"),
        # Longer than the spec's maxLength (254), for S/MIME and document signing alike.
        ({**SMIME, "password": "pw", "certEmail": LONG_EMAIL}, "certEmail"),
        (
            {
                "certType": "CDS_INDIVIDUAL",
                "csr": make_csr("Jane Smith")[0],
                "certEmail": LONG_EMAIL,
            },
            "certEmail",
        ),
    ],
)
def test_a_malformed_order_is_a_400_and_spends_nothing(api, body, field):
    before = _state(api)
    error = assert_error(api.post("certificates", body), 400, field)["errors"][0]
    # The message speaks of the field, never in the sandbox's own terms (no Python values).
    assert not any(word in error["message"] for word in ("[", "{", "True", "None")), error
    assert _state(api) == before


def test_the_checks_let_the_ordinary_shapes_through(api):
    """The same fields, well formed: an A-label name, a long name after a short CN, text."""
    punycode = make_csr("www.example.com")[0]
    body = {"certType": "UC_SSL", "csr": punycode, "org": "CertDesk Demo Corp"}
    names = ["www.example.com", "xn--bcher-kva.example.com", "x" * 60 + ".example.com"]
    response = api.post("certificates", {**body, "subjectAltName": names, "certLifetime": "P1Y"})
    assert response.status_code == 201, response.text
    response = api.post("certificates", {**SMIME, "password": "pw"})
    assert response.status_code == 201, response.text
    response = api.post("certificates", {**SMIME, "password": "pw", "certEmail": LONG_EMAIL[1:]})
    assert response.status_code == 201, response.text  # 254 characters, the most allowed


@pytest.mark.parametrize(
    "path, status, field",
    [
        (f"certificates/{TOO_BIG}", 404, None),
        ("certificates/\u00b2", 400, "trackingId"),  # a digit, but not an ASCII one
        (f"clients/{TOO_BIG}", 404, None),
        (f"clients/{TOO_BIG}/domains", 404, None),
        (f"certificates?offset={TOO_BIG}", 400, "offset"),
        (f"certificates?trackingId={TOO_BIG}", 400, "trackingId"),
        (f"certificates?trackingId=in:1,{TOO_BIG}", 400, "trackingId"),
        (f"certificates?keySize={TOO_BIG}", 400, "keySize"),
        (f"domains?clientId={TOO_BIG}", 400, "clientId"),
    ],
)
def test_numbers_out_of_range_are_refused(api, path, status, field):
    assert_error(api.get(path), status, field)


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=1_0", "limit"),  # Python's int() reads these; no JSON or Java parser does
        ("offset=1_0", "offset"),
        ("limit=\u0665", "limit"),  # ARABIC-INDIC DIGIT FIVE
        ("trackingId=5_000_002", "trackingId"),
        ("keySize=2_048", "keySize"),
        ("trackingId=in:\u0661,2", "trackingId"),
        ("domains?clientId=\uff11", "clientId"),  # FULLWIDTH DIGIT ONE
    ],
)
def test_a_number_in_a_query_is_ascii_digits(api, query, field):
    path = query if query.startswith("domains") else f"certificates?{query}"
    assert_error(api.get(path), 400, field)


def test_a_number_in_a_query_may_have_a_sign_and_spaces(api):
    """What a strict parser still reads: ``+5`` and a value with spaces around it."""
    for limit in ("+5", " 5 ", "005"):
        response = api.get("certificates", params={"limit": limit})
        assert response.status_code == 200, response.text
        assert response.json()["summary"]["limit"] == 5


@pytest.mark.parametrize("client_id", [True, 1.5, "1_0", "\u0661", [1], {"id": 1}])
def test_a_client_id_that_is_no_integer_is_a_400_and_spends_nothing(api, client_id):
    """``true`` and ``1.5`` were taken as client 1, and an order issued for it."""
    before = _state(api)
    response = api.order("www.example.com", "UC_SSL", clientId=client_id)
    assert_error(response, 400, "clientId")
    assert _state(api) == before


def test_a_client_id_may_be_an_integer_in_any_json_form(api):
    """A JSON integer, its text (as Ansible's string-typed options send it), or ``1.0``."""
    for client_id in (1, "1", " 1", 1.0):
        response = api.order("www.example.com", "UC_SSL", clientId=client_id, validateOnly=True)
        assert response.status_code == 200, (client_id, response.text)


def _expiry_in_a_month() -> date:
    return date.today() + timedelta(days=30)


@pytest.mark.parametrize(
    "expiry",
    [
        lambda day: int(day.strftime("%Y%m%d")),  # a JSON number was read as its digits
        lambda day: day.strftime("%Y%m%d"),  # ISO 8601's basic form, which RFC 3339 is not
        lambda day: day.strftime("%G-W%V-%u"),  # an ISO week date
        lambda day: f"{day.isoformat()}T10",  # an hour alone
        lambda day: f"{day.isoformat()}T1011Z",
    ],
    ids=["number", "basic", "week", "hour", "basic-time"],
)
def test_an_expiry_that_is_no_rfc_3339_date_is_a_400_and_spends_nothing(api, expiry):
    before = _state(api)
    response = api.order("www.example.com", "UC_SSL", certExpiryDate=expiry(_expiry_in_a_month()))
    assert_error(response, 400, "certExpiryDate")
    assert _state(api) == before


def test_the_expiry_forms_peers_send_are_read(api):
    """A date (acme2certifier, Lemur), Ansible's date-time with two fraction digits, .NET's
    with seven and an offset (Keyfactor), and RFC 3339's lower-case and space-separated forms."""
    day = _expiry_in_a_month().isoformat()
    for expiry in (
        day,
        f"{day}T00:00:00.00Z",
        f"{day}T10:11:12.1234567-05:00",
        f"{day}t10:11:12z",
        f"{day} 10:11:12",
    ):
        response = api.order("www.example.com", "UC_SSL", certExpiryDate=expiry, validateOnly=True)
        assert response.status_code == 200, (expiry, response.text)


@pytest.mark.parametrize("moment", ["20180101T000000Z", "2018-W01-1T00:00:00Z", "2018-01-01T00"])
def test_a_date_filter_that_is_no_rfc_3339_date_time_is_a_400(api, moment):
    assert_error(
        api.get("certificates", params={"expiresAfter": f"ge:{moment}"}), 400, "expiresAfter"
    )


def test_a_decline_reason_and_a_domain_name_must_be_text(api):
    pending = api.order("www.example.com", "UC_SSL", queueForApproval=True).json()["trackingId"]
    for reason in (["x"], {"a": 1}):
        body = {"operation": "DECLINE", "declineReason": reason}
        assert_error(api.patch(f"certificates/{pending}", body), 400, "declineReason")
    assert api.get(f"certificates/{pending}").json()["status"] == "PENDING"
    before = api.get("clients/1/domains", params={"limit": 1}).json()["summary"]["total"]
    for name in (["a.example"], 5, "bücher.example", "*.example.org", "-bad.example"):
        body = {"domainName": name, "verificationMethod": "DNS"}
        assert_error(api.post("clients/1/domains", body), 400, "domainName")
    after = api.get("clients/1/domains", params={"limit": 1}).json()["summary"]["total"]
    assert after == before


def test_a_document_signing_order_takes_its_name_from_cn_or_cert_email(api):
    """A CDS certificate is named after a person: with no CN in the CSR, from ``cn`` or else
    ``certEmail`` (both must be text)."""
    body = {"certType": "CDS_INDIVIDUAL", "csr": _csr_without_cn("www.example.com")}
    by_mail = api.post("certificates", {**body, "certEmail": "signer@example.com"})
    assert by_mail.status_code == 201, by_mail.text
    detail = api.get(f"certificates/{by_mail.json()['trackingId']}").json()
    assert "CN=signer@example.com" in detail["dn"], detail["dn"]
    by_name = api.post("certificates", {**body, "cn": "Jane Signer"})
    assert by_name.status_code == 201, by_name.text
    assert_error(api.post("certificates", {**body, "cn": ["Jane"]}), 400, "cn")


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 5000 + "]" * 5000,  # deeper than any parser follows
        '{"certType": "STANDARD_SSL", "tracking": ' + '{"a": ' * 5000 + "1" + "}" * 5001,
        '{"certType": NaN}',  # not JSON: NaN and Infinity are no JSON numbers
        '{"certType": "STANDARD_SSL", "tracking": {"customFields": {"number1": Infinity}}}',
    ],
    ids=["deep-array", "deep-object", "nan", "infinity"],
)
def test_a_body_that_is_not_json_is_a_400_and_is_logged(api, sb, raw):
    before = _state(api)
    sb.clear_requests()
    response = api.session.post(api.base + "certificates", data=raw, timeout=30)
    body = assert_error(response, 400)
    assert body["errors"][0]["message"] == "The request body is not valid JSON"
    assert _state(api) == before
    (logged,) = [r for r in sb.requests() if r["method"] == "POST"]
    assert logged["status"] == 400 and logged["body"] == raw


@pytest.mark.parametrize(
    "method, path, raw",
    [
        ("PUT", "certificates/{id}/tracking", '{"trackingInfo": "\\ud800"}'),
        ("PUT", "certificates/{id}/tracking", '{"customFields": {"text1": "a\\udc00b"}}'),
        ("POST", "clients", '{"clientName": "\\udfff Ltd"}'),
        ("POST", "certificates/{id}/revocations", '{"revocationComment": "\\ud83d"}'),
        ("PATCH", "certificates/{id}", '{"operation": "SUSPEND", "\\ud800": 1}'),
        (
            "POST",
            "certificates",
            '{"certType": "UC_SSL", "tracking": {"requesterName": "\\ud800"}}',
        ),
    ],
)
def test_half_a_surrogate_pair_is_not_json_text(api, sb, method, path, raw):
    """A JSON escape for half of a UTF-16 surrogate pair names no character, and no UTF-8 text
    holds it: the body is refused as not JSON (the store could not hold it: a 500), and nothing
    changes. A whole pair is a character like any other."""
    tracking_id = api.order("www.example.com").json()["trackingId"]
    before = (_state(api), api.get(f"certificates/{tracking_id}").json(), api.get("clients").json())
    url = api.base + path.format(id=tracking_id)
    response = api.session.request(method, url, data=raw, timeout=30)
    body = assert_error(response, 400)
    assert body["errors"][0]["message"] == "The request body is not valid JSON"
    after = (_state(api), api.get(f"certificates/{tracking_id}").json(), api.get("clients").json())
    assert after == before
    pair = '{"trackingInfo": "\\ud83d\\ude00"}'  # U+1F600, written as its surrogate pair
    replaced = api.session.put(f"{api.base}certificates/{tracking_id}/tracking", data=pair)
    assert replaced.status_code == 200, replaced.text
    shown = api.get(f"certificates/{tracking_id}").json()["tracking"]["trackingInfo"]
    assert shown == "\U0001f600"


def _raw_exchange(sb, request: bytes) -> tuple[bytes, dict, bytes]:
    """Send bytes as they are (no client library tidies them up); return the status line, the
    headers and the body of the answer."""
    host, port = sb.root_url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = dict(line.decode("latin-1").split(": ", 1) for line in lines)
    return status, headers, body


def test_credentials_that_are_not_ascii_are_refused_like_none(sb):
    """A Basic header whose credentials are raw bytes, not base64, is a 401 in the envelope
    (it was a 500 HTML page)."""
    status, headers, body = _raw_exchange(
        sb,
        b"GET /enterprise/v2/application/version HTTP/1.1\r\nHost: sandbox\r\n"
        b"Authorization: Basic \xff\xfe\r\nConnection: close\r\n\r\n",
    )
    assert status.startswith(b"HTTP/1.1 401"), status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["errors"][0]["message"] == "Authentication required"
    assert headers["WWW-Authenticate"].startswith("Basic")


_TOKEN_HEADER = "Authorization: Basic {token}\r\n"


@pytest.mark.parametrize(
    "request_head, status",
    [
        # A trackingId=in: list too long for one request line (a client listing every order).
        ("GET /enterprise/v2/certificates?trackingId=in:" + "1," * 33000 + "2 HTTP/1.1\r\n", 414),
        ("GET /enterprise/v2/application/version HTTP/1.1\r\n" + "X-A: b\r\n" * 101, 431),
        ("GET /enterprise/v2/application/version HTTP/1.1\r\nX-A: " + "b" * 70000 + "\r\n", 431),
        ("GET /enterprise/v2/application/version HTTP/9\r\n", 400),
        ("GET\r\n", 400),
    ],
    ids=["uri-too-long", "too-many-headers", "header-too-long", "bad-version", "no-path"],
)
def test_what_the_server_refuses_before_the_api_is_in_the_envelope(sb, request_head, status):
    """Errors the HTTP server answers itself were an HTML page; clients read the ECS envelope
    on every error (Keyfactor looks for "errors" in the body)."""
    token = base64.b64encode(f"{sb.api_user}:{sb.api_key}".encode()).decode()
    line, _, headers = request_head.partition("\r\n")
    raw = f"{line}\r\nHost: sandbox\r\n{_TOKEN_HEADER.format(token=token)}{headers}"
    answer_status, answer_headers, body = _raw_exchange(sb, (raw + "\r\n").encode("latin-1"))
    assert answer_status.split()[1] == str(status).encode(), answer_status
    assert answer_headers["Content-Type"] == "application/json"
    assert int(answer_headers["Content-Length"]) == len(body)
    envelope = json.loads(body)
    assert envelope["status"] == status
    assert envelope["errors"][0]["message"]


def test_a_body_that_cannot_be_read_is_a_400_and_is_logged(api, sb):
    """A broken chunked encoding: a 400 in the envelope (it was a 500 HTML page), logged."""
    before = _state(api)
    sb.clear_requests()
    token = base64.b64encode(f"{sb.api_user}:{sb.api_key}".encode())
    status, headers, body = _raw_exchange(
        sb,
        b"POST /enterprise/v2/certificates HTTP/1.1\r\nHost: sandbox\r\n"
        b"Authorization: Basic " + token + b"\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
    )
    assert status.startswith(b"HTTP/1.1 400 Bad Request"), status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "status": 400,
        "errors": [{"message": "The request body could not be read"}],
    }
    assert _state(api) == before
    (logged,) = [r for r in sb.requests() if r["method"] == "POST"]
    assert logged["status"] == 400 and logged["user"] == sb.api_user


def test_a_request_that_expects_100_continue_gets_one_interim_answer(sb):
    """.NET's HttpWebRequest (the Keyfactor plugins) sends "Expect: 100-continue" with every
    POST, PUT and PATCH, then the body once told to go on: one "100 Continue", then the answer
    (there were two)."""
    token = base64.b64encode(f"{sb.api_user}:{sb.api_key}".encode())
    body = json.dumps({"trackingInfo": "expect-100"}).encode()
    tracking_id = next(o["trackingId"] for o in sb.orders("trackingId") if o["trackingId"])
    host, port = sb.root_url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"PUT /enterprise/v2/certificates/{tracking_id}/tracking HTTP/1.1\r\n".encode()
            + b"Host: sandbox\r\nAuthorization: Basic "
            + token
            + b"\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += conn.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]
    assert sb.order(tracking_id)["tracking"]["trackingInfo"] == "expect-100"


def test_a_body_over_the_limit_is_a_413_unread_and_spends_nothing(api, sb):
    """An order body twice the limit (announced by Content-Length, or found while a chunked body
    is read) is refused in the envelope before it is read whole or kept in the request log."""
    from entrust_sandbox.traffic import MAX_BODY_BYTES

    before = _state(api)
    sb.clear_requests()
    padded = json.dumps({"certType": "STANDARD_SSL", "csr": "A" * (2 * MAX_BODY_BYTES)})
    answer = api.session.post(f"{api.base}certificates", data=padded, timeout=30)
    assert answer.status_code == 413
    message = f"The request body is larger than {MAX_BODY_BYTES:,} bytes"
    assert answer.json() == {"status": 413, "errors": [{"message": message}]}

    def chunks():
        for start in range(0, len(padded), 65536):
            yield padded[start : start + 65536].encode()

    chunked = api.session.post(f"{api.base}certificates", data=chunks(), timeout=30)
    assert chunked.status_code == 413 and chunked.json()["errors"][0]["message"] == message
    assert _state(api) == before
    logged = [r for r in sb.requests() if r["method"] == "POST"]
    assert [(r["status"], r["body"]) for r in logged] == [(413, None), (413, None)]
    # Just under the limit is read as any body is (and refused here for its CSR).
    near = json.dumps({"certType": "STANDARD_SSL", "csr": "A" * (MAX_BODY_BYTES - 100)})
    assert api.session.post(f"{api.base}certificates", data=near, timeout=30).status_code == 400
