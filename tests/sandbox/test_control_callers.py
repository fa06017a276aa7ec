"""The control API under /_sandbox/ has no authentication, so it answers no web page: not a
request sent from another origin, nor one addressed to a name (DNS rebinding)."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

NEW_USER = {"username": "crosssite", "apiKey": "crosssite-key-1234567890", "role": "administrator"}


def _usernames(sb) -> list[str]:
    resp = requests.get(sb.root_url + "_sandbox/users", timeout=10)
    assert resp.status_code == 200
    return [u["username"] for u in resp.json()["users"]]


def test_a_page_of_another_origin_cannot_change_the_sandbox(sb):
    resp = requests.post(
        sb.root_url + "_sandbox/users",
        data='{"username": "crosssite", "apiKey": "crosssite-key-1234567890"}',
        headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
        timeout=10,
    )
    assert resp.status_code == 403 and "another origin" in resp.json()["errors"][0]["message"]
    assert "crosssite" not in _usernames(sb)
    # The same request from the sandbox's own origin, or from no browser, is taken.
    port = urlsplit(sb.root_url).port
    own = requests.post(
        sb.root_url + "_sandbox/users",
        json=NEW_USER,
        headers={"Origin": f"http://127.0.0.1:{port}"},
        timeout=10,
    )
    assert own.status_code == 201 and "crosssite" in _usernames(sb)


def test_a_name_pointed_at_the_loopback_reads_nothing(sb):
    port = urlsplit(sb.root_url).port
    for host in (f"rebind.evil.example:{port}", "rebind.evil.example", f"localhost.evil:{port}"):
        resp = requests.get(sb.root_url + "_sandbox/users", headers={"Host": host}, timeout=10)
        assert resp.status_code == 403, host
        assert "apiKey" not in resp.text
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        resp = requests.get(sb.root_url + "_sandbox/users", headers={"Host": host}, timeout=10)
        assert resp.status_code == 200, host
