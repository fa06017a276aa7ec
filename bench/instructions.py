"""Instructions per page: the scaling benchmark's mixed load, counted by valgrind rather than timed.

Usage: .venv/bin/python bench/instructions.py [--keep DIR] [--scale N] [--passes P] [URL ...]

On a shared machine a page's time drifts (by 2x within an hour on the machines this was written
on), so two versions of the code can be compared by time only in long interleaved runs. The
number of instructions a page takes does not drift: repeated runs agree within 0.1%. This serves
the pages of `scaling.py`'s mixed load (or the URLs given) in one process through Flask's test
client, signed in, under valgrind (cachegrind, no cache simulation): once with P passes over
them and once with none, and prints the difference per page.

What it leaves out: waitress, the kernel, and waiting (I/O, locks, the GIL), which cost time and
no instructions of this process; and an instruction is not a fixed time. Confirm a change it
finds with the mixed load of `scaling.py`.

--keep DIR: the SQLite instance is DIR/<scale>, filled on first use (the one `scaling.py --keep
DIR` fills; default /tmp/certdesk-scaling). Compare two checkouts by running this script of each
against the same instance. It needs Debian's `valgrind`, and takes about two minutes at 100,000
rows.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import scaling  # noqa: E402  (after the path is set)


def serve_pages(instance: Path, urls: list[str], passes: int) -> None:
    """Sign in and get every URL once, then ``passes`` more times (run under valgrind)."""
    from webapp import serving

    app = scaling.bench_app(instance, f"sqlite:///{instance / 'certdesk.db'}")
    serving.tune_gc()
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    signed_in = client.post(
        "/login", data={"username": "bench", "password": scaling.PASSWORD, "csrf_token": token}
    )
    if signed_in.status_code not in (302, 303):
        raise SystemExit(f"sign-in failed: {signed_in.status_code}")
    for _ in range(1 + passes):  # the first pass warms caches and compiles the templates
        for url in urls:
            status = client.get(url).status_code
            if status != 200:
                raise SystemExit(f"{url}: {status}")


def counted(instance: Path, urls: list[str], passes: int) -> int:
    """Instructions of a whole run of ``serve_pages`` under valgrind."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            str(passes),
            "--instance",
            str(instance),
            *urls,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts in every run
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("urls", nargs="*", help="pages to count (default: the mixed load)")
    parser.add_argument("--keep", default="/tmp/certdesk-scaling")
    parser.add_argument("--scale", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    args = parser.parse_args()
    urls = args.urls or scaling.mix_urls(scaling.scenarios())
    if args.child is not None:
        serve_pages(Path(args.instance), urls, args.child)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    instance = Path(args.keep) / str(args.scale)
    scaling.build(instance, f"sqlite:///{instance / 'certdesk.db'}", args.scale)
    base = counted(instance, urls, 0)
    total = counted(instance, urls, args.passes)
    per_page = (total - base) / (args.passes * len(urls))
    print(
        f"{per_page / 1e6:.2f} M instructions per page ({len(urls)} pages x {args.passes} "
        f"passes, {args.scale:,} rows, code in {ROOT})"
    )


if __name__ == "__main__":
    main()
