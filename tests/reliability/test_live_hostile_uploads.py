"""Hostile files sent to a real `certdesk serve`: each gets a clear refusal, and the portal keeps
answering other requests meanwhile (parsing holds the interpreter lock, so one slow parse would
stall every thread of the process).

Timeouts here are generous limits on a request that must end, not measurements.
"""

from __future__ import annotations

import threading

import requests

from tests.live import signed_in

ONE_MB_OF_BEGIN_LINES = b"-----BEGIN A-----\n" * (1_000_000 // 18)


def _while_posting(server, http, path, files, data=None):
    """POST in a thread; meanwhile /healthz must answer. Returns the POST's response."""
    answer: dict = {}

    def post():
        try:
            answer["resp"] = http.post(server.url + path, files=files, data=data, timeout=120)
        except requests.RequestException as exc:
            answer["error"] = exc

    worker = threading.Thread(target=post)
    worker.start()
    health = requests.get(server.url + "/healthz", timeout=30)
    worker.join(150)
    assert "resp" in answer, f"the upload got no answer: {answer.get('error')}"
    assert health.status_code == 200
    return answer["resp"]


def test_a_megabyte_of_begin_lines_is_refused_in_words(live_server):
    http = signed_in(live_server, "admin")
    cert = _while_posting(
        live_server,
        http,
        "/certificates/import",
        files={"files": ("begin.pem", ONE_MB_OF_BEGIN_LINES, "application/x-pem-file")},
    )
    assert cert.status_code == 422 and "No certificate found in this PEM file" in cert.text
    csr = _while_posting(
        live_server,
        http,
        "/csrs/import",
        files={"csr_file": ("begin.csr", ONE_MB_OF_BEGIN_LINES, "application/pkcs10")},
    )
    assert csr.status_code == 422 and "This is not a CSR" in csr.text
