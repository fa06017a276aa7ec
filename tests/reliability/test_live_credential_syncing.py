"""Through `certdesk serve`: a credential saved without a Test Login says "Syncing" while its
first sync runs in the background, then "Synced" once the sync has ended."""

from __future__ import annotations

from tests.live import add_credential, served, signed_in, wait_until


def _status(http, url: str, name: str) -> str:
    page = http.get(url + "/entrust/manage/", timeout=30).text
    row = page.split(f">{name}</a>")[1]
    return row.split('class="cred-status"')[1].split("</td>")[0]


def test_a_new_credential_says_syncing_until_its_first_sync_ends(instance, sandbox, fast_clients):
    sandbox.seed(certificates=3, seed=7)
    with served(instance, sandbox) as (app, server):
        http = signed_in(server, "admin")
        # Each read of the sync takes a second and a half: long enough to look at the list.
        sandbox.faults([{"kind": "latency", "method": "GET", "ms": 1500}])
        sandbox.clear_requests()
        add_credential(http, server, sandbox, "Live sandbox")
        wait_until("the sync's first read", lambda: sandbox.requests(), 30)
        during = _status(http, server.url, "Live sandbox")
        assert '<span class="badge muted">Syncing</span>' in during, during
        assert "Not tested" not in during
        sandbox.clear_faults()
        wait_until(
            "the first sync to end",
            lambda: "Synced" in _status(http, server.url, "Live sandbox"),
            60,
        )
        assert "Syncing" not in _status(http, server.url, "Live sandbox")
