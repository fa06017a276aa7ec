"""Benchmark: list pages of the ECS sandbox at 100,000 stored certificates.

Usage: .venv/bin/python bench/sandbox_list.py [--count N] [--repeat R] [--state PATH]
Measures over HTTP (requests, keep-alive) with p50/p95 over R calls each:
- a 1000-item page of GET /certificates at spread offsets (target p95 < 150 ms),
- the same page with fields=*,
- GET /certificates?trackingId=in:<100 ids>&limit=1000.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import requests

from entrust_sandbox.testing import SandboxServer


def _timed(session, url, params, repeat) -> list[float]:
    times = []
    for i in range(repeat):
        call = params(i) if callable(params) else params
        started = time.perf_counter()
        response = session.get(url, params=call, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


def _report(label: str, times: list[float], target: float | None = None) -> None:
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    verdict = "" if target is None else f"  target p95 < {target:.0f} ms: "
    verdict += "" if target is None else ("PASS" if p95 < target else "FAIL")
    print(f"{label:<44} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms{verdict}")


def main() -> None:
    """Seed, then time the list calls and print p50/p95."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--state", default=None)
    args = parser.parse_args()
    rng = random.Random(7)
    with SandboxServer(state_path=args.state) as sb:
        sb.seed(certificates=args.count, seed=1)
        session = requests.Session()
        session.auth = (sb.api_user, sb.api_key)
        url = sb.base_url + "certificates"
        total = session.get(url, params={"limit": 1}).json()["summary"]["total"]
        print(f"{args.count} certificates seeded; {total} visible to the list call")

        def page(_i):
            return {"limit": 1000, "offset": rng.randrange(0, max(1, total - 1000))}

        _timed(session, url, {"limit": 1000}, 3)  # warm up
        _report(
            "GET /certificates limit=1000 (default fields)",
            _timed(session, url, page, args.repeat),
            150,
        )
        _report(
            "GET /certificates limit=1000 fields=*",
            _timed(session, url, lambda i: {**page(i), "fields": "*"}, args.repeat),
            150,
        )
        _report(
            "GET /certificates limit=1000 offset=0",
            _timed(session, url, {"limit": 1000}, args.repeat),
            150,
        )

        def ids(_i):
            chosen = rng.sample(range(5_000_001, 5_000_001 + args.count), 100)
            return {"trackingId": "in:" + ",".join(map(str, chosen)), "limit": 1000}

        _report("GET /certificates trackingId=in:(100 ids)", _timed(session, url, ids, args.repeat))
        session.close()


if __name__ == "__main__":
    main()
