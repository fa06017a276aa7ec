"""Benchmark: seed the ECS sandbox with 100,000 certificates (target: under 60 s).

Usage: .venv/bin/python bench/sandbox_seed.py [N] [--state PATH]
Seeds through the control API of a real sandbox server (in memory unless --state is given), so
the figure includes the HTTP call, and prints the wall time.
"""

from __future__ import annotations

import argparse
import time

from entrust_sandbox.testing import SandboxServer


def main() -> None:
    """Seed N certificates and print the time it took."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", nargs="?", type=int, default=100_000)
    parser.add_argument("--state", default=None, help="SQLite file instead of memory")
    args = parser.parse_args()
    with SandboxServer(state_path=args.state) as sb:
        started = time.perf_counter()
        summary = sb.seed(certificates=args.count, seed=1)
        elapsed = time.perf_counter() - started
    storage = args.state or "memory"
    print(f"seeded {summary['certificates']} certificates ({storage}) in {elapsed:.2f} s")
    print(
        f"  server-side seeding: {summary['seconds']:.2f} s; third-party: {summary['thirdParty']}"
    )
    print(f"  target < 60 s: {'PASS' if elapsed < 60 else 'FAIL'}")


if __name__ == "__main__":
    main()
