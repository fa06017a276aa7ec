"""Fault injection, the rate-limit switch and the request log."""

from __future__ import annotations

import json
import time

import pytest
import requests

from .conftest import assert_error

CERTS = "/enterprise/v2/certificates"


def _count(sb):
    return sb.sandbox.store.query_one("SELECT COUNT(*) AS n FROM certificates")["n"]


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_http_errors_do_not_commit(api, sb, code):
    sb.faults([{"method": "POST", "path": CERTS, "kind": f"http_{code}"}])
    before = _count(sb)
    assert_error(api.order("www.example.com"), code)
    assert _count(sb) == before


def test_rate_limit_fault(api, sb):
    sb.faults([{"path": CERTS, "kind": "rate_limit", "retry_after": 3, "limit": 10}])
    response = api.get("certificates")
    assert_error(response, 429)
    assert response.headers["Retry-After"] == "3"
    assert response.headers["X-Rate-Limit-Limit"] == "10"


def test_count_caps_hits_and_method_matters(api, sb):
    sb.faults([{"method": "GET", "path": CERTS, "kind": "http_503", "count": 2}])
    assert api.order("www.example.com").status_code == 201  # POST is not matched
    codes = [api.get("certificates").status_code for _ in range(4)]
    assert codes == [503, 503, 200, 200]


def test_rate_zero_never_hits_and_prefix_match(api, sb):
    sb.faults([{"path": "/enterprise/v2/certificates/*", "kind": "http_500", "rate": 0.0}])
    assert all(api.get("certificates/5000001").status_code == 200 for _ in range(5))
    sb.faults([{"path": "/enterprise/v2/clients*", "kind": "http_500"}])
    assert api.get("clients/1/domains").status_code == 500
    assert api.get("certificates").status_code == 200  # exact path only without "*"


def test_rate_is_a_probability(api, sb):
    sb.faults([{"path": "/enterprise/v2/application/version", "kind": "http_500", "rate": 0.5}])
    codes = [api.get("application/version").status_code for _ in range(60)]
    assert 5 < codes.count(500) < 55


def test_latency(api, sb):
    sb.faults([{"path": "/enterprise/v2/application/version", "kind": "latency", "ms": 400}])
    started = time.perf_counter()
    assert api.get("application/version").status_code == 200
    assert time.perf_counter() - started >= 0.4


def test_timeout_holds_and_does_not_commit(api, sb):
    sb.faults([{"method": "POST", "path": CERTS, "kind": "timeout", "ms": 1500}])
    before = _count(sb)
    started = time.perf_counter()
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.session.post(api.base + "certificates", json={"certType": "STANDARD_SSL"}, timeout=0.3)
    assert time.perf_counter() - started < 1.4
    time.sleep(1.3)
    assert _count(sb) == before


def test_reset_drops_connection(api, sb):
    sb.faults([{"path": CERTS, "kind": "reset"}])
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(sb.base_url + "certificates", auth=(sb.api_user, sb.api_key), timeout=5)


def test_malformed_json(api, sb):
    sb.faults([{"path": "/enterprise/v2/clients", "kind": "malformed_json"}])
    response = api.get("clients")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_truncated_body_commits(api, sb):
    sb.faults([{"method": "POST", "path": CERTS, "kind": "truncated_body"}])
    before = _count(sb)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        api.order("www.example.com")
    assert _count(sb) == before + 1


def test_html_error_page(api, sb):
    sb.faults([{"path": CERTS, "kind": "html_error_page", "status": 502}])
    response = api.get("certificates")
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text


def test_commit_then_500_creates_the_certificate(api, sb):
    sb.faults([{"method": "POST", "path": CERTS, "kind": "commit_then_500", "count": 1}])
    info = {"trackingInfo": "intent-42"}
    assert_error(api.order("www.example.com", tracking=info), 500)
    found = api.get("certificates", params={"tracking.trackingInfo": "intent-42"}).json()
    assert found["summary"]["total"] == 1
    assert found["certificates"][0]["status"] == "ACTIVE"


def test_commit_then_timeout_creates_the_certificate(api, sb):
    sb.faults([{"method": "POST", "path": CERTS, "kind": "commit_then_timeout", "ms": 1000}])
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.session.post(
            api.base + "certificates",
            json={"certType": "STANDARD_SSL", "csr": _csr(), "tracking": {"trackingInfo": "t-9"}},
            timeout=0.5,
        )
    found = api.get("certificates", params={"tracking.trackingInfo": "t-9"}).json()
    assert found["summary"]["total"] == 1


def _csr():
    from entrust_sandbox.ca import make_csr

    return make_csr("www.example.com")[0]


def test_bad_rule_refused(sb):
    with pytest.raises(requests.HTTPError):
        sb.faults([{"kind": "meteor_strike"}])


def test_clear_faults(api, sb):
    sb.faults([{"kind": "http_500"}])
    assert api.get("clients").status_code == 500
    sb.clear_faults()
    assert api.get("clients").status_code == 200


def test_global_rate_limit_per_user(api, sb):
    sb.set_rate_limit(3)
    codes = [api.get("application/version").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = api.get("application/version")
    assert_error(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-Rate-Limit-Limit"] == "3"
    sb.add_user("other", "other-key")
    other = requests.get(sb.base_url + "application/version", auth=("other", "other-key"))
    assert other.status_code == 200  # the window is per API user
    sb.set_rate_limit(None)
    assert api.get("application/version").status_code == 200


def test_request_log(api, sb):
    sb.clear_requests()
    api.order("www.example.com", tracking={"trackingInfo": "logged"})
    api.get("certificates", params={"status": "ACTIVE"})
    log = sb.requests()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("POST", CERTS, 201),
        ("GET", CERTS, 200),
    ]
    assert log[0]["body"]["tracking"] == {"trackingInfo": "logged"}
    assert log[1]["query"] == "status=ACTIVE"
    assert all("Authorization" not in e["headers"] for e in log)
    assert log[0]["user"] == sb.api_user and log[0]["time"].endswith("Z")
    sb.faults([{"kind": "http_503", "count": 1}])
    api.get("clients")
    assert sb.requests()[-1]["status"] == 503 and sb.requests()[-1]["fault"] == "http_503"
    sb.clear_requests()
    assert sb.requests() == []


def test_a_large_body_is_logged_whole_and_the_log_is_bounded_by_bytes(api, sb):
    """A body past the size the log keeps parsed comes back from it parsed all the same; and the
    log drops its oldest entries once their bodies pass its byte budget, not only its count."""
    from entrust_sandbox.traffic import RequestLog

    sb.clear_requests()
    csr = "A" * (200 * 1024)
    assert api.session.post(f"{api.base}certificates", json={"csr": csr}).status_code == 400
    assert sb.requests()[-1]["body"] == {"csr": csr}

    log = RequestLog(maxlen=100, max_body_bytes=1000)
    for n in range(5):
        log.add({"n": n, "body": b'{"pad": "' + b"x" * 390 + b'"}'}, 400)
    assert [e["n"] for e in log.list()] == [3, 4]  # 2 x 400 bytes fit in 1,000, 3 do not
    assert log.list()[0]["body"] == {"pad": "x" * 390}
    log.add({"n": 5, "body": None}, 5000)  # one entry over the budget alone is still kept
    assert [e["n"] for e in log.list()] == [5]
    log.add({"n": 6, "body": None})
    assert [e["n"] for e in log.list()] == [6]
    log.clear()
    for n in range(150):
        log.add({"n": n, "body": None})
    assert [e["n"] for e in log.list()] == list(range(50, 150))


def test_reset_clears_everything(api, sb):
    sb.faults([{"kind": "http_500", "path": "/enterprise/v2/clients"}])
    sb.advance_clock(10)
    sb.reset()
    assert sb.requests() == []
    assert api.get("clients").json() == {"clients": []}  # no fault, no data
    assert api.get("certificates").json()["summary"]["total"] == 0
    clock = requests.get(sb.root_url + "_sandbox/clock").json()
    assert clock["offsetDays"] == 0


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "latency", "ms": "slow"},
        {"kind": "timeout", "ms": -5},
        {"kind": "html_error_page", "status": "bad gateway"},
        {"kind": "html_error_page", "status": 42},
        {"kind": "http_500", "path": 5},
        {"kind": "http_500", "method": ["GET"]},
        {"kind": "http_500", "rate": [1]},
        {"kind": "http_500", "rate": 2},
        {"kind": "http_500", "count": "twice"},
    ],
)
def test_a_fault_rule_that_cannot_be_applied_is_refused_when_set(api, sb, rule):
    """Checked when set (400), not left to crash every API request it matches."""
    response = requests.post(sb.root_url + "_sandbox/faults", json={"rules": [rule]}, timeout=10)
    assert_error(response, 400, "rules")
    listed = requests.get(sb.root_url + "_sandbox/faults", timeout=10).json()
    assert listed["rules"] == []
    assert api.get("application/version").status_code == 200


@pytest.mark.parametrize(
    "path, body",
    [
        ("clock", {"advance_days": "NaN"}),
        ("clock", {"advance_days": 10**30}),
        ("seed", {"certificates": 10**30}),
        ("faults", "[" * 5000 + "]" * 5000),
    ],
)
def test_the_control_api_refuses_out_of_range_input(sb, path, body):
    """A 400 in the envelope rather than a 500; the clock stays where it was."""
    clock = sb.root_url + "_sandbox/clock"
    before = requests.get(clock, timeout=10).json()
    data = body if isinstance(body, str) else json.dumps(body)
    response = requests.post(
        sb.root_url + "_sandbox/" + path,
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_error(response, 400)
    assert requests.get(clock, timeout=10).json()["offsetDays"] == before["offsetDays"]


@pytest.mark.parametrize("step", [36500, -36500])
def test_the_clock_moved_step_by_step_stays_within_its_range(api, sb, step):
    """Each step is bounded, and so is where the steps lead: the clock is never moved out of the
    calendar (every request would then fail), only up to its range from real time."""
    clock = sb.root_url + "_sandbox/clock"
    assert requests.post(clock, json={"advance_days": step}, timeout=10).status_code == 200
    for _ in range(80):
        response = requests.post(clock, json={"advance_days": step}, timeout=10)
        if response.status_code != 200:
            break
    assert_error(response, 400, "advance_days")
    assert requests.get(clock, timeout=10).json()["offsetDays"] == step
    assert api.get("certificates").status_code == 200
