"""Persistent connections: the sandbox keeps an HTTP/1.1 connection open between requests, as
the live API does, and closes it when the client, the framing or a fault says so."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import time

import pytest

from entrust_sandbox.testing import SandboxServer


def _address(sb) -> tuple[str, int]:
    host, port = sb.root_url.split("//")[1].rstrip("/").split(":")
    return host, int(port)


def _headers(sb) -> dict:
    token = base64.b64encode(f"{sb.api_user}:{sb.api_key}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def _read_answer(conn: socket.socket) -> tuple[bytes, dict, bytes]:
    """Read one answer framed by its Content-Length from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.lower(): v for k, v in (line.decode().split(": ", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += conn.recv(65536)
    return status, headers, body


def _closed_by_server(conn: socket.socket, wait: float = 10) -> bool:
    conn.settimeout(wait)
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def test_one_connection_carries_request_after_request(sb):
    """Requests on one connection are answered in turn, without "Connection: close", including
    after a request whose body the server never read (a POST to no resource)."""
    conn = http.client.HTTPConnection(*_address(sb), timeout=10)
    try:
        conn.request("GET", "/enterprise/v2/application/version", headers=_headers(sb))
        first = conn.getresponse()
        assert first.status == 200 and first.read()
        assert first.getheader("Connection") is None
        sock = conn.sock
        assert sock is not None

        conn.request("POST", "/not-a-resource", body=b"x" * 200_000, headers=_headers(sb))
        refused = conn.getresponse()
        refused.read()
        assert refused.status == 404
        assert conn.sock is sock

        for _ in range(3):
            conn.request("GET", "/enterprise/v2/application/version", headers=_headers(sb))
            again = conn.getresponse()
            assert again.status == 200, again.read()
            assert "version" in again.read().decode().lower()
            assert conn.sock is sock
    finally:
        conn.close()


def test_two_requests_sent_at_once_get_two_answers(sb):
    """A client that sends its next request before reading the answer (pipelining) has it
    answered, not swallowed with the leftovers of the first."""
    request = (
        "GET /enterprise/v2/application/version HTTP/1.1\r\nHost: sandbox\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in _headers(sb).items())
        + "\r\n"
    ).encode()
    with socket.create_connection(_address(sb), timeout=10) as conn:
        conn.sendall(request + request)
        data = b""
        deadline = time.monotonic() + 10
        while data.count(b"HTTP/1.1 200 OK") < 2 and time.monotonic() < deadline:
            data += conn.recv(65536)
        assert data.count(b"HTTP/1.1 200 OK") == 2, data


@pytest.mark.parametrize(
    "version, connection",
    [("HTTP/1.1", "Connection: close\r\n"), ("HTTP/1.0", ""), ("HTTP/1.1", "")],
    ids=["asked-to-close", "http-1.0", "chunked-body"],
)
def test_the_connection_closes_when_the_request_says_so(sb, version, connection):
    headers = "".join(f"{k}: {v}\r\n" for k, v in _headers(sb).items())
    if not connection and version == "HTTP/1.1":  # a chunked body: its end is harder to trust
        request = (
            f"PUT /enterprise/v2/application/version {version}\r\nHost: sandbox\r\n{headers}"
            "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        )
    else:
        request = (
            f"GET /enterprise/v2/application/version {version}\r\nHost: sandbox\r\n{headers}"
            f"{connection}\r\n"
        )
    with socket.create_connection(_address(sb), timeout=10) as conn:
        conn.sendall(request.encode())
        status, answer_headers, _ = _read_answer(conn)
        assert status.split()[0] in (b"HTTP/1.0", b"HTTP/1.1")
        assert answer_headers["connection"] == "close"
        assert _closed_by_server(conn)


def test_a_fault_that_cuts_an_answer_short_closes_its_connection(sb):
    """A truncated body promises more than it sends: the connection must end, or the client
    would wait for the rest."""
    path = "/enterprise/v2/application/version"
    sb.faults([{"kind": "truncated_body", "method": "GET", "path": path}])
    with socket.create_connection(_address(sb), timeout=10) as conn:
        conn.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: sandbox\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in _headers(sb).items())
                + "\r\n"
            ).encode()
        )
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Connection: close" in head
    assert len(body) < int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])


def test_an_idle_connection_is_closed_after_the_idle_time(sb):
    server = sb._server
    kept, server.idle_seconds = server.idle_seconds, 0.3
    try:
        conn = http.client.HTTPConnection(*_address(sb), timeout=10)
        conn.request("GET", "/enterprise/v2/application/version", headers=_headers(sb))
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200
        assert _closed_by_server(conn.sock, wait=5)
        conn.close()
    finally:
        server.idle_seconds = kept


def test_stopping_the_sandbox_ends_its_kept_connections():
    """A client holding a connection to a stopped sandbox finds no server there, as it would
    if each connection had closed after its answer."""
    sb = SandboxServer(https=True).start()
    try:
        context = ssl.create_default_context(cafile=sb.ca_cert_path)
        conn = http.client.HTTPSConnection(*_address(sb), timeout=10, context=context)
        conn.request("GET", "/enterprise/v2/application/version", headers=_headers(sb))
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200 and answer.getheader("Connection") is None
    finally:
        sb.stop()
    conn.sock.settimeout(5)
    with pytest.raises((OSError, http.client.HTTPException)):
        conn.request("GET", "/enterprise/v2/application/version", headers=_headers(sb))
        conn.getresponse().read()


def test_a_client_that_connects_and_says_nothing_holds_up_no_one():
    """The TLS handshake runs on the connection's own thread: a connection that never starts
    one (a port scan, a stalled client) leaves the sandbox answering everyone else."""
    sb = SandboxServer(https=True).start()
    try:
        context = ssl.create_default_context(cafile=sb.ca_cert_path)
        with socket.create_connection(_address(sb), timeout=10):
            conn = http.client.HTTPSConnection(*_address(sb), timeout=5, context=context)
            conn.request("GET", "/enterprise/v2/application/version", headers=_headers(sb))
            answer = conn.getresponse()
            assert answer.status == 200, answer.read()
            conn.close()
    finally:
        sb.stop()
