"""Through a real `certdesk serve` (one worker, its threads): a request waiting on Entrust gives up
its worker's turn (webapp.turns), so the other users' pages are served meanwhile, without
waiting for the turn."""

from __future__ import annotations

import threading
import time

from tests.live import signed_in


def test_pages_are_served_while_a_request_waits_on_entrust(live_server, sandbox):
    sandbox.clear_requests()
    sandbox.faults([{"kind": "latency", "path": "/enterprise/v2/*", "ms": 4000}])
    admin = signed_in(live_server, "admin")
    reader = signed_in(live_server, "operator")
    answer = {}

    def test_login():
        answer["resp"] = admin.post(
            live_server.url + "/entrust/manage/credentials/test",
            data={
                "name": "Turns",
                "api_user": sandbox.api_user,
                "api_key": sandbox.api_key,
                "base_url": sandbox.base_url,
            },
            timeout=60,
        )

    waiting = threading.Thread(target=test_login)
    waiting.start()
    deadline = time.monotonic() + 30
    while not sandbox.requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.requests(), "the Test Login never reached the sandbox"

    for path in ("/", "/certificates/", "/csrs/", "/entrust/", "/jobs/"):
        assert reader.get(live_server.url + path, timeout=30).status_code == 200, path
    assert waiting.is_alive()  # all of them while the Test Login waited on Entrust
    waiting.join(60)
    sandbox.clear_faults()
    assert answer["resp"].status_code == 200
    assert "Test Login succeeded." in answer["resp"].text
    # None of them waited for the turn: the worker notes a request that did.
    assert not any("for its turn" in line for line in live_server.lines), live_server.lines
