"""Through a real `certdesk serve`: each answer carries its request's id (X-Request-Id), and with
CERTDESK_ACCESS_LOG on, each request is one line of the log, naming the client, the user, the
request, the status, the size and the time taken, and ending with that id."""

from __future__ import annotations

import re
import time

import requests

from tests.helpers import PASSWORD
from tests.live import csrf_token, start_server, stop_server


def _line_of(server, request_id: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [line for line in list(server.lines) if f"[request {request_id}]" in line]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.05)
    raise AssertionError("\n".join(server.lines))


def test_each_request_has_an_id_and_a_line_in_the_access_log(instance):
    server = start_server(instance, {"CERTDESK_ACCESS_LOG": "true"})
    try:
        http = requests.Session()
        token = csrf_token(http, server.url + "/login")
        signed_in = http.post(
            server.url + "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token},
            allow_redirects=False,
            timeout=30,
        )
        assert signed_in.status_code == 302
        page = http.get(server.url + "/certificates/?q=shop&expiry=30", timeout=30)
        missing = http.get(server.url + "/no-such-page", timeout=30)
        ids = {r.headers["X-Request-Id"] for r in (signed_in, page, missing)}
        assert len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)

        line = _line_of(server, signed_in.headers["X-Request-Id"])
        assert re.search(r'INFO certdesk\.access: 127\.0\.0\.1 admin "POST /login" 302 \d+ ', line)
        assert PASSWORD not in "\n".join(server.lines)  # a form's fields are never logged
        line = _line_of(server, page.headers["X-Request-Id"])
        size = len(page.content)
        assert re.search(
            rf'127\.0\.0\.1 admin "GET /certificates/\?q=shop&expiry=30" 200 {size} [\d.]+ ms',
            line,
        ), line
        line = _line_of(server, missing.headers["X-Request-Id"])
        assert '"GET /no-such-page" 404' in line
    finally:
        stop_server(server)


def test_an_access_log_line_cannot_be_forged_and_keeps_no_setup_token(instance):
    """A path that decodes to a quote and fields of its own stays one field, encoded again; the
    first-run setup link's token is left out of its line."""
    server = start_server(instance, {"CERTDESK_ACCESS_LOG": "true"})
    try:
        forged = "/x%22%20200%200%200.1%20ms%20%5Brequest%20deadbeef0000%5D"
        resp = requests.get(server.url + forged, timeout=30)
        line = _line_of(server, resp.headers["X-Request-Id"])
        assert line.count('"') == 2 and "deadbeef0000" in line
        assert re.search(
            r'"GET /x%22%20200%200%200\.1%20ms%20%5Brequest%20deadbeef0000%5D" 404 ', line
        )
        assert line.count("[request ") == 1
        secret = "SECRET-SETUP-TOKEN-1234"
        resp = requests.get(
            server.url + f"/setup?next=%2F&token={secret}", timeout=30, allow_redirects=False
        )
        line = _line_of(server, resp.headers["X-Request-Id"])
        assert '"GET /setup?next=%2F&token=..." ' in line
        assert secret not in "\n".join(server.lines)
    finally:
        stop_server(server)


def test_a_request_for_another_host_name_has_its_id_and_its_line(instance):
    """Refused before Flask sees it (TRUSTED_HOSTS), a probe under another host name is
    answered with its request id and logged like any request."""
    server = start_server(
        instance, {"CERTDESK_ACCESS_LOG": "true", "CERTDESK_TRUSTED_HOSTS": '["127.0.0.1"]'}
    )
    try:
        resp = requests.get(
            server.url + "/login?next=%2F", headers={"Host": "evil.example"}, timeout=30
        )
        assert resp.status_code == 400
        line = _line_of(server, resp.headers["X-Request-Id"])
        assert re.search(r'certdesk\.access: 127\.0\.0\.1 - "GET /login\?next=%2F" 400 \d+ ', line)
    finally:
        stop_server(server)


def test_the_access_log_is_off_unless_asked_for(instance):
    server = start_server(instance)
    try:
        resp = requests.get(server.url + "/login", timeout=30)
        assert re.fullmatch(r"[0-9a-f]{12}", resp.headers["X-Request-Id"])
        time.sleep(0.3)
        assert not [line for line in server.lines if "certdesk.access" in line]
    finally:
        stop_server(server)
