"""Downloads and the job progress fragment through a real `certdesk serve`: every format arrives
whole, a private-key download opens with its password, and a background job's fragment polls
itself until the job ends, then says so (HX-Trigger) and stops; and the jobs list, which polls
while any job runs."""

from __future__ import annotations

import time

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from tests.live import signed_in
from tests.unit.certs.factory import MiniPki, p12

HTMX = {"HX-Request": "true"}


def _imported(live_server, http, key, cert, chain) -> str:
    """Import the certificate with its key (a PKCS#12 file); its page's URL."""
    resp = http.post(
        live_server.url + "/certificates/import",
        data={"password": "pw-123456"},
        files={"files": ("d.p12", p12(key, cert, chain, "pw-123456"))},
        allow_redirects=False,
        timeout=60,
    )
    assert resp.status_code == 303
    return live_server.url + resp.headers["Location"].rstrip("/")


def test_every_download_arrives_whole(live_server):
    http = signed_in(live_server, "admin")
    t = MiniPki()
    key, cert = t.leaf("download.example.com")
    base = _imported(live_server, http, key, cert, t.chain)

    got = {
        fmt: http.get(f"{base}/download/{fmt}", timeout=60)
        for fmt in ("pem", "der", "fullchain", "p7b")
    }
    assert all(
        r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
        for r in got.values()
    )
    assert x509.load_pem_x509_certificate(got["pem"].content) == cert
    assert x509.load_der_x509_certificate(got["der"].content) == cert
    assert x509.load_pem_x509_certificates(got["fullchain"].content) == [cert, *t.chain]
    assert set(pkcs7.load_pem_pkcs7_certificates(got["p7b"].content)) == {cert, *t.chain}

    bundle = http.post(
        f"{base}/pkcs12",
        data={"format": "pkcs12", "password": "export-pw-1", "password2": "export-pw-1"},
        timeout=60,
    )
    assert bundle.status_code == 200
    loaded = pkcs12.load_pkcs12(bundle.content, b"export-pw-1")
    assert loaded.cert.certificate == cert
    assert loaded.key.private_numbers() == key.private_numbers()


def test_a_certificate_named_in_another_script_downloads(live_server):
    # A header holds Latin-1 only: an internationalised host name is offered in its xn-- form.
    http = signed_in(live_server, "admin")
    t = MiniPki()
    key, cert = t.leaf("例え.example.com", ["www.example.com"])
    base = _imported(live_server, http, key, cert, t.chain)
    pem = http.get(f"{base}/download/pem", timeout=60)
    assert pem.status_code == 200 and x509.load_pem_x509_certificate(pem.content) == cert
    assert (
        pem.headers["Content-Disposition"] == 'attachment; filename="xn--r8jz45g.example.com.pem"'
    )
    bundle = http.post(
        f"{base}/pkcs12",
        data={"format": "pkcs12", "password": "export-pw-1", "password2": "export-pw-1"},
        timeout=60,
    )
    assert bundle.status_code == 200
    assert pkcs12.load_pkcs12(bundle.content, b"export-pw-1").cert.certificate == cert


def _slow_sync(live_server, sandbox, name: str, seed: int):
    """A signed-in session, and the id of the sync job its new credential started: Entrust
    answers slowly, so the job is seen running first (the caller clears the faults)."""
    sandbox.seed(certificates=5, seed=seed)
    sandbox.faults([{"kind": "latency", "path": "/enterprise/v2/*", "ms": 300}])
    http = signed_in(live_server, "admin")
    resp = http.post(
        live_server.url + "/entrust/manage/credentials/new",
        data={
            "name": name,
            "api_user": sandbox.api_user,
            "api_key": sandbox.api_key,
            "base_url": sandbox.base_url,
        },
        allow_redirects=False,
        timeout=60,
    )
    assert resp.status_code == 303
    return http, int(resp.headers["Location"].rsplit("job=", 1)[1].split("&")[0])


def test_a_job_fragment_polls_until_the_job_ends(live_server, sandbox):
    http, job_id = _slow_sync(live_server, sandbox, "Streams", seed=4)
    fragments, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        frag = http.get(f"{live_server.url}/jobs/{job_id}", headers=HTMX, timeout=30)
        assert frag.status_code == 200 and "<html" not in frag.text
        fragments.append(frag)
        if "HX-Trigger" in frag.headers:
            break
        time.sleep(0.2)
    sandbox.clear_faults()
    running, last = fragments[0], fragments[-1]
    assert 'hx-trigger="load delay:' in running.text  # it polls itself while the job runs
    assert last.headers["HX-Trigger"] == "job-finished"
    assert "hx-trigger" not in last.text and "Succeeded" in last.text  # and stops when it ends


def test_the_jobs_list_polls_while_a_job_runs_and_stops_when_none_does(live_server, sandbox):
    http, job_id = _slow_sync(live_server, sandbox, "Jobs list", seed=5)
    page = http.get(f"{live_server.url}/jobs/", timeout=30)
    assert page.status_code == 200 and f'href="/jobs/{job_id}"' in page.text
    fragments, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        frag = http.get(f"{live_server.url}/jobs/", headers=HTMX, timeout=30)
        assert frag.status_code == 200 and "<html" not in frag.text
        assert frag.text.lstrip().startswith('<div id="jobs-list"')
        fragments.append(frag.text)
        if 'hx-trigger="every 2s"' not in frag.text:
            break
        time.sleep(0.2)
    sandbox.clear_faults()
    # The list asks for itself again while the sync runs, and stops once it has ended.
    assert 'hx-trigger="every 2s"' in fragments[0]
    assert "hx-trigger" not in fragments[-1] and "Succeeded" in fragments[-1]
