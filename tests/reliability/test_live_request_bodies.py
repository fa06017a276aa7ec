"""Through a real `certdesk serve`: a request body far larger than any upload CertDesk takes is
refused before it is read, so no one, signed in or not, makes the server store it."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import requests

ANNOUNCED = 100 * 1024 * 1024  # far past the 5 MiB upload limit, well under waitress's 1 GiB


def _answer_to_announced_body(url: str, length: int) -> bytes:
    """Send the head of a POST to the sign-in page announcing ``length`` bytes of body, and none
    of the body; return what the server answers within 10 s (b"" when nothing)."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {length}\r\n\r\n".encode()
        )
        try:
            return sock.recv(200)
        except TimeoutError:
            return b""


def test_a_huge_body_is_refused_before_it_is_sent(live_server):
    answer = _answer_to_announced_body(live_server.url, ANNOUNCED)
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_an_upload_a_little_over_the_limit_still_gets_certdesks_own_answer(live_server):
    resp = requests.post(
        live_server.url + "/login", data={"username": "x" * (6 * 1024 * 1024)}, timeout=30
    )
    assert resp.status_code == 413
    assert "The upload is larger than the 5 MiB limit." in resp.text
