"""`make bench`: every benchmark in bench/, each beside its baseline measured in the same run.

Usage: .venv/bin/python bench/run_all.py [--quick] [--only import,poller,pages,others]
                                         [--out FILE] [--logs DIR]

Each script runs in its own process against its own freshly seeded sandbox and database (the
scripts seed what they need), with --json to hand its figures over:

- bench/orders_import.py --full: Import Existing Orders of 50,000 orders, 20 ms per Entrust call,
  8 downloads at once, the request budget lifted, beside a naive importer (one detail call per
  order, timed on 500 orders and extrapolated);
- bench/orders_poller.py: the status poller's calls and time per cycle for 1,000 pending orders,
  beside reading every order's detail;
- bench/list_pages.py: the orders, certificates and domains lists and the dashboard at 100,000
  rows (1 and 8 clients, full page and htmx fragment, beside the bare query), 60 s of mixed read
  load beside /healthz, cold start and memory of `certdesk serve` beside an empty database;
- then every other script in bench/ (sandbox seeding and listing, the lists' own benchmarks,
  order actions, hostile uploads, the scaling benchmark on PostgreSQL when it is installed), at
  sizes that keep the run within about 11 minutes; their output goes to the log folder and their
  exit status and time into the results.

It writes the figures (value, baseline, ratio, target, met), the machine and the date to
bench/results.json (--quick: bench/out/results-quick.json) and prints them as a Markdown table.
--quick: small sizes and short loads, a few minutes: a smoke run of the harness, not figures to
quote. The targets are those of the full sizes.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PY = sys.executable

# (name, full arguments, quick arguments) of the scripts whose figures are collected
COLLECTED = {
    "import": (
        "orders_import.py",
        ["--sizes", "50000", "--full", "--naive-sample", "500"],
        ["--sizes", "5000", "--full", "--naive-sample", "100"],
    ),
    "poller": (
        "orders_poller.py",
        ["--pending", "1000", "--approved", "50"],
        ["--pending", "200", "--approved", "20"],
    ),
    "pages": ("list_pages.py", [], ["--quick"]),
}
# The other scripts: run for their printed figures (kept in the log folder) and exit status.
OTHERS = [
    ("sandbox_seed.py", ["100000"], ["10000"]),
    (
        "sandbox_list.py",
        ["--count", "100000", "--repeat", "20"],
        ["--count", "10000", "--repeat", "5"],
    ),
    ("sandbox_domains.py", ["--repeat", "1"], ["--counts", "2000,10000", "--repeat", "1"]),
    ("catalog_tabs.py", [], []),
    ("certificates_list.py", ["--repeat", "10"], ["--count", "10000", "--repeat", "3"]),
    ("orders_list.py", ["--repeat", "10"], ["--count", "10000", "--repeat", "3"]),
    ("orders_actions.py", ["--repeat", "5"], ["--count", "10000", "--repeat", "3"]),
    ("hostile_uploads.py", ["--repeat", "3"], ["--repeat", "1"]),
    (
        "scaling.py",
        ["--db", "postgresql", "--scales", "10000,100000", "--repeat", "6", "--rounds", "2"]
        + ["--mixed-seconds", "10"],
        ["--quick", "--db", "sqlite", "--repeat", "4", "--rounds", "2", "--mixed-seconds", "4"],
    ),
]


# -- the machine ----------------------------------------------------------------------------------


def _first(path: str, prefix: str) -> str | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _postgresql_version() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        return None
    out = subprocess.run([found[-1], "--version"], capture_output=True, text=True)
    return out.stdout.strip() or None


def machine() -> dict:
    mem = _first("/proc/meminfo", "MemTotal")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "ram_gb": round(int(mem.split()[0]) / 2**20, 1) if mem else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _postgresql_version() or "not installed",
        "commit": commit,
    }


# -- running the scripts --------------------------------------------------------------------------


def run(script: str, args: list[str], logs: Path, json_out: Path | None = None) -> dict:
    """Run one script; its output goes to the console's summary line and to its log file."""
    cmd = [PY, str(BENCH / script), *args] + (["--json", str(json_out)] if json_out else [])
    log = logs / (Path(script).stem + ".log")
    print(f"== {script} {' '.join(args)}  (output: {log})", flush=True)
    started = time.perf_counter()
    with open(log, "w") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        rc = subprocess.call(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    seconds = round(time.perf_counter() - started, 1)
    print(f"   {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {seconds} s", flush=True)
    shown = log.relative_to(ROOT) if log.is_relative_to(ROOT) else log
    return {"script": script, "args": args, "exit": rc, "seconds": seconds, "log": str(shown)}


# -- the figures ----------------------------------------------------------------------------------


def figure(name, value, unit, baseline=None, baseline_is="", ratio=None, ratio_is="", target="",
           met=None, **extra) -> dict:  # fmt: skip
    return {
        "figure": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_is": baseline_is,
        "ratio": None if ratio is None else round(ratio, 2),
        "ratio_is": ratio_is,
        "target": target,
        "met": met,
        **extra,
    }


def import_figures(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        n = f"{r['orders']:,}"
        speedup = r["naive_seconds_for_all_extrapolated"] / r["wall_seconds"]
        naive_rate = r["orders"] / r["naive_seconds_for_all_extrapolated"]
        meta_floor = r["list_calls"] * r["latency_ms"] / 1000
        out += [
            figure(
                f"import {n} orders ({r['latency_ms']} ms/call): wall time",
                r["wall_seconds"],
                "s",
                r["naive_seconds_for_all_extrapolated"],
                f"naive importer, extrapolated from {r['naive_sample']} orders",
                speedup,
                "times faster than the naive importer",
                ">= 10x faster",
                speedup >= 10,
            ),
            figure(
                f"import {n}: API calls",
                r["api_calls"],
                "calls",
                r["naive_calls_for_all"],
                "naive importer (list + one detail call per order)",
                r["api_calls"] / r["naive_calls_for_all"],
                "of the naive importer's calls",
            ),
            figure(
                f"import {n}: orders per second",
                r["rows_per_second"],
                "orders/s",
                round(naive_rate, 1),
                "naive importer",
                r["rows_per_second"] / naive_rate,
                "times the naive importer's rate",
            ),
            figure(
                f"import {n}: importer memory (max resident during the import, "
                "mapped DB pages left out)",
                r["rss_max_during_import_mb"],
                "MB",
                r["rss_after_first_page_mb"],
                "the same process after the first page of 1,000",
                r["rss_max_during_import_mb"] / r["rss_after_first_page_mb"],
                "of the RSS after the first page",
            ),
            figure(
                f"import {n}: metadata phase",
                r["metadata_seconds"],
                "s",
                round(meta_floor, 2),
                f"{r['list_calls']} list calls x latency",
                r["metadata_seconds"] / meta_floor if meta_floor else None,
                "of the list calls' latency",
                "< 20 s",
                r["metadata_seconds"] < 20,
            ),
            figure(
                f"import {n}: certificate phase ({r['concurrency']} at once, budget lifted)",
                r["certificates_seconds"],
                "s",
                r["certificates_floor_seconds"],
                f"floor: {r['detail_calls']:,} detail calls x latency / {r['concurrency']}",
                r["certificates_ratio_to_floor"],
                "of the floor",
                "<= 1.3x floor",
                r["certificates_ratio_to_floor"] <= 1.3,
                fetching_seconds=r.get("certificates_fetching_seconds"),
            ),
        ]
    return out


def poller_figures(r: dict) -> list[dict]:
    n = f"{r['pending']:,}"
    unchanged, naive = r["unchanged_cycle"], r["naive_one_by_one"]
    first, without = r["first_cycle"], r["without_last_seen"]
    return [
        figure(
            f"poller, {n} pending: calls per unchanged cycle",
            unchanged["calls"],
            "calls",
            naive["calls"],
            "reading every order's detail",
            unchanged["calls"] / naive["calls"],
            "of the naive poller's calls",
            "< 15 calls",
            unchanged["calls"] < 15,
        ),
        figure(
            f"poller, {n} pending: time per unchanged cycle",
            unchanged["seconds"],
            "s",
            naive["seconds"],
            "reading every order's detail",
            unchanged["seconds"] / naive["seconds"],
            "of the naive poller's time",
        ),
        figure(
            f"poller, {n} pending: first cycle ({r['approved']} approved meanwhile)",
            first["calls"],
            "calls",
            without["calls"],
            "the status read without what was last seen",
            first["calls"] / without["calls"] if without["calls"] else None,
            "of the calls without what was last seen",
            seconds=first["seconds"],
        ),
        figure(
            f"poller, {n} pending: cycle with 10 issued",
            r["ten_issued_cycle"]["calls"],
            "calls",
            naive["calls"],
            "reading every order's detail",
            r["ten_issued_cycle"]["calls"] / naive["calls"],
            "of the naive poller's calls",
            seconds=r["ten_issued_cycle"]["seconds"],
        ),
    ]


def page_figures(r: dict) -> list[dict]:
    out = []
    rows = f"{r['rows']:,}"
    for name, p in r["pages"].items():
        for clients, key, bare_key, ratio_key in (
            (1, "one", "bare", "ratio_one"),
            (r["clients"], "many", "bare_many", "ratio_many"),
        ):
            f, bare = p[key], p[bare_key]
            ratio = p[ratio_key]
            out.append(
                figure(
                    f"{name} at {rows} rows, {clients} client{'s' if clients > 1 else ''}: "
                    "p50/p95/p99",
                    f"{f['p50']:.1f} / {f['p95']:.1f} / {f['p99']:.1f}",
                    "ms",
                    bare["p95"],
                    f"bare query p95, {clients} at once",
                    ratio,
                    "page p95 / bare query p95",
                    "p95 < 100 ms and < 3x bare",
                    f["p95"] < 100 and ratio < 3,
                    p95=f["p95"],
                    p50=f["p50"],
                    p99=f["p99"],
                )
            )
    m = r["mixed"]
    out.append(
        figure(
            f"mixed read load, {r['clients']} clients, {m['seconds']:.0f} s, {rows} rows",
            m["requests_per_second"],
            "requests/s",
            m["healthz_requests_per_second"],
            "/healthz, same clients",
            m["requests_per_second"] / m["healthz_requests_per_second"],
            "of /healthz's rate",
            ">= 200/s",
            m["requests_per_second"] >= 200,
        )
    )
    out.append(
        figure(
            "mixed read load: errors",
            m["errors"],
            "errors",
            m["healthz_errors"],
            "/healthz, same clients",
            None,
            "",
            "0",
            m["errors"] == 0,
        )  # fmt: skip
    )
    if w := r.get("mixed_workers"):
        out.append(
            figure(
                f"mixed read load, `serve --workers {w['workers']}`, {w['seconds']:.0f} s, "
                f"{rows} rows",
                w["requests_per_second"],
                "requests/s",
                m["requests_per_second"],
                "the same load, one process",
                w["requests_per_second"] / m["requests_per_second"],
                "of one process's rate",
                ">= 200/s, 0 errors",
                w["requests_per_second"] >= 200 and w["errors"] == 0,
            )
        )
    c = r["cold_start"]
    for key, label in (("healthz", "first 200 on /healthz"), ("signed_in", "signed-in dashboard")):
        value, base = c[f"{key}_seconds"], c[f"empty_{key}_seconds"]
        out.append(
            figure(
                f"cold start at {rows} rows: process start to {label}",
                value,
                "s",
                base,
                "the same on an empty database",
                value / base if base else None,
                "of the empty database's",
                "< 3 s",
                value < 3,
            )
        )
    out.append(
        figure(
            f"certdesk serve RSS at {rows} rows, started",
            c["rss_started_mb"],
            "MB",
            c["empty_rss_started_mb"],
            "the same on an empty database",
            c["rss_started_mb"] / c["empty_rss_started_mb"],
            "of the empty database's",
        )
    )
    mem = r["memory_after_run"]
    out.append(
        figure(
            f"certdesk serve RSS at {rows} rows, after the run (peak)",
            mem["peak_rss_mb"],
            "MB",
            c["rss_started_mb"],
            "the same process once started",
            mem["peak_rss_mb"] / c["rss_started_mb"],
            "of its RSS once started",
            rss_after_run_mb=mem["rss_mb"],
        )
    )
    return out


COLLECT = {
    "import": import_figures,
    "poller": poller_figures,
    "pages": page_figures,
}


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(figures: list[dict]) -> str:
    lines = ["| figure | value | baseline | ratio | target | met |", "|---|---|---|---|---|---|"]
    for f in figures:
        value = f"{_cell(f['value'])} {f['unit']}"
        base = "–" if f["baseline"] is None else f"{_cell(f['baseline'])} ({f['baseline_is']})"
        ratio = "–" if f["ratio"] is None else f"{_cell(f['ratio'])}x ({f['ratio_is']})"
        met = "–" if f["met"] is None else _cell(f["met"])
        lines.append(
            f"| {f['figure']} | {value} | {base} | {ratio} | {f['target'] or '–'} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", help="comma-separated: import, poller, pages, others")
    parser.add_argument("--out", help="results file (default bench/results.json)")
    parser.add_argument("--logs", help="folder for each script's output (default bench/out/)")
    args = parser.parse_args()
    chosen = set(args.only.split(",")) if args.only else {*COLLECTED, "others"}
    out_file = Path(
        args.out or (BENCH / "out" / "results-quick.json" if args.quick else BENCH / "results.json")
    )
    logs = Path(args.logs or BENCH / "out")
    logs.mkdir(parents=True, exist_ok=True)
    out_file.parent.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    info = machine()
    info["load_average_at_start"] = os.getloadavg()
    results = {
        "mode": "quick" if args.quick else "full",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "figures": [],
        "scripts": [],
        "raw": {},
    }
    failed = 0
    for key, (script, full, quick) in COLLECTED.items():
        if key not in chosen:
            continue
        json_out = logs / f"{key}.json"
        json_out.unlink(missing_ok=True)
        ran = run(script, quick if args.quick else full, logs, json_out)
        results["scripts"].append(ran)
        if ran["exit"] != 0 or not json_out.exists():
            failed += 1
            continue
        raw = json.loads(json_out.read_text())
        results["raw"][key] = raw
        results["figures"] += COLLECT[key](raw)
    if "others" in chosen:
        for script, full, quick in OTHERS:
            if script == "scaling.py" and not args.quick and info["postgresql"] == "not installed":
                print("== scaling.py: PostgreSQL is not installed, skipped", flush=True)
                continue
            ran = run(script, quick if args.quick else full, logs)
            results["scripts"].append(ran)
            failed += ran["exit"] != 0
    results["seconds"] = round(time.perf_counter() - started, 1)
    info["load_average_at_end"] = os.getloadavg()
    out_file.write_text(json.dumps(results, indent=1) + "\n")

    print(f"\n## CertDesk benchmarks ({results['mode']} run, {results['date']})\n")
    print(
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM; Python {info['python']}, "
        f"SQLite {info['sqlite']}, PostgreSQL: {info['postgresql']}; load average at the start "
        f"{info['load_average_at_start'][0]:.1f}, at the end {info['load_average_at_end'][0]:.1f}\n"
    )
    print(table(results["figures"]))
    missed = [f["figure"] for f in results["figures"] if f["met"] is False]
    print(
        f"\n{len(results['figures'])} figures, {len(missed)} target(s) missed; "
        f"{len(results['scripts'])} scripts in {results['seconds'] / 60:.1f} min, "
        f"{failed} failed; written to {out_file}"
    )
    if args.quick:
        print("(quick run: reduced sizes, the targets are for the full sizes)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
