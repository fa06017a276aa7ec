"""The CSV exports, streamed by a real `certdesk serve`: every row arrives, not just the header.

The Flask test client reads a streamed body inside the request's app context; waitress reads it
after the view has returned and the request's database session is gone, which is where the
exports used to break.
"""

from __future__ import annotations

import csv
import io

from tests.live import signed_in
from tests.unit.certs.factory import MiniPki, pem


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_both_exports_stream_every_row_through_a_real_server(live_server):
    http = signed_in(live_server, "admin")
    pki = MiniPki()
    names = [f"host{i}.example.com" for i in range(3)]
    files = [("files", (f"{n}.pem", pem(pki.leaf(n)[1]), "application/x-pem-file")) for n in names]
    resp = http.post(
        live_server.url + "/certificates/import", files=files, allow_redirects=False, timeout=60
    )
    assert resp.status_code == 303, resp.text

    certs = http.get(live_server.url + "/certificates/export.csv", timeout=60)
    assert certs.status_code == 200 and certs.headers["Content-Type"].startswith("text/csv")
    assert sorted(r["common_name"] for r in _rows(certs.text)) == names

    only_one = http.get(live_server.url + "/certificates/export.csv?q=host1.", timeout=60)
    assert [r["common_name"] for r in _rows(only_one.text)] == ["host1.example.com"]

    trail = http.get(live_server.url + "/admin/audit/export.csv", timeout=60)
    actions = [r["action"] for r in _rows(trail.text)]
    assert actions.count("certificate.add") == 3 and actions.count("user.create") == 3
    assert not any("Traceback" in line for line in live_server.lines)
