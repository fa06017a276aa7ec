"""Through a real `certdesk serve`: connections that send part of a request and then nothing
(as a client that stalls, or one that means to hold the server) do not keep other users out."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import requests

STALLED = 150  # more than waitress holds by default (100)


def test_stalled_connections_leave_room_for_other_users(live_server):
    address = urlsplit(live_server.url)
    stalled = []
    try:
        for _ in range(STALLED):
            sock = socket.create_connection((address.hostname, address.port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line: unfinished
            stalled.append(sock)
        time.sleep(0.5)  # the server has accepted them all
        started = time.monotonic()
        resp = requests.get(live_server.url + "/healthz", timeout=10)
        assert resp.status_code == 200
        assert time.monotonic() - started < 5
    finally:
        for sock in stalled:
            sock.close()
