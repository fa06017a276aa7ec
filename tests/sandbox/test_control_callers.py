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


def test_a_caller_on_another_machine_reads_and_changes_nothing():
    """A sandbox told to listen beyond loopback (for a peer's client on another machine) serves
    its ECS API there, but its control API, which hands out API keys and resets the account,
    answers only this machine: whatever Host the caller names."""
    from entrust_sandbox.app import create_app

    app = create_app()
    client = app.test_client()
    for peer in ("192.0.2.7", "10.1.2.3", "fd00::7", "::ffff:192.0.2.7"):
        env = {"REMOTE_ADDR": peer}
        for host in ("127.0.0.1", "localhost", "192.0.2.2"):
            resp = client.get("/_sandbox/users", headers={"Host": host}, environ_base=env)
            assert resp.status_code == 403, (peer, host)
            assert resp.get_json()["errors"][0]["message"] == (
                "The control API answers requests from this machine only"
            )
        reset = client.post("/_sandbox/seed", json={"certificates": 3}, environ_base=env)
        assert reset.status_code == 403
    for peer in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        resp = client.get("/_sandbox/users", environ_base={"REMOTE_ADDR": peer})
        assert resp.status_code == 200, peer
    # The ECS API itself is served to the other machine (it asks for the API user's key).
    api = client.get(
        "/enterprise/v2/application/version", environ_base={"REMOTE_ADDR": "192.0.2.7"}
    )
    assert api.status_code == 401
