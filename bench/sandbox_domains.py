"""Benchmark: the ECS sandbox's GET /domains at 20,000 and 100,000 domains.

Usage: .venv/bin/python bench/sandbox_domains.py [--counts 20000,100000] [--repeat R]

For each count, a fresh in-memory sandbox gets that many domains (inserted into its store, over
three clients), then the portal's own ECS client reads every domain page by page (1,000 a page,
as a catalog sync does), R times; it prints the median time to read them all, the median time of
one page at the start and at the end of the list, and the ratio between the counts (flat paging:
about the ratio of the counts, 5 for 20k and 100k).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from entrust_sandbox.testing import SandboxServer  # noqa: E402
from webapp.ecs.client import EcsClient  # noqa: E402


def _seed(sb: SandboxServer, count: int) -> None:
    with sb.sandbox.store.tx() as conn:
        conn.executemany(
            "INSERT INTO domains (client_id, domain_name, verification_method, "
            "verification_status, ov_eligible, ev_eligible) VALUES (?, ?, 'DNS', ?, 1, 0)",
            [
                (1 + i % 3, f"host{i:06d}.bench.example", ("APPROVED", "EXPIRED")[i % 7 == 0])
                for i in range(count)
            ],
        )


def _page(session, url, offset) -> float:
    started = time.perf_counter()
    response = session.get(url, params={"limit": 1000, "offset": offset}, timeout=120)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def measure(count: int, repeat: int) -> dict:
    with SandboxServer() as sb:
        _seed(sb, count)
        client = EcsClient(sb.base_url, sb.api_user, sb.api_key)
        total = sum(1 for _ in client.iter_domains())  # warm up, and check the count
        assert total >= count, total
        whole = []
        for _ in range(repeat):
            started = time.perf_counter()
            read = sum(1 for _ in client.iter_domains())
            whole.append(time.perf_counter() - started)
            assert read == total
        session = requests.Session()
        session.auth = (sb.api_user, sb.api_key)
        url = sb.base_url + "domains"
        first = [_page(session, url, 0) for _ in range(repeat * 3)]
        last = [_page(session, url, max(0, total - 1000)) for _ in range(repeat * 3)]
        client.close()
    return {
        "domains": total,
        "all": statistics.median(whole),
        "first": statistics.median(first),
        "last": statistics.median(last),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="20000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = [measure(int(c), args.repeat) for c in args.counts.split(",")]
    print(f"{'domains':>9}{'all pages (s)':>15}{'first page (ms)':>17}{'last page (ms)':>16}")
    for r in results:
        print(f"{r['domains']:>9,}{r['all']:>15.2f}{r['first']:>17.1f}{r['last']:>16.1f}")
    if len(results) > 1:
        lo, hi = results[0], results[-1]
        print(
            f"{hi['domains'] / lo['domains']:.1f}x the domains: all pages "
            f"{hi['all'] / lo['all']:.1f}x the time, last page {hi['last'] / lo['last']:.1f}x"
        )


if __name__ == "__main__":
    main()
