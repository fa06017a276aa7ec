"""The `make bench` runner (bench/run_all.py): how a script's figures become rows with a
baseline, a ratio and a met flag, and how a failing script fails the run. No timing here: the
scripts are stand-ins that write canned figures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", REPO / "bench" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _import_row(**changes):
    row = {
        "orders": 50000,
        "latency_ms": 20,
        "concurrency": 8,
        "wall_seconds": 100.0,
        "metadata_seconds": 12.0,
        "certificates_seconds": 88.0,
        "certificates_fetching_seconds": 70.0,
        "certificates_floor_seconds": 75.0,
        "certificates_ratio_to_floor": 1.17,
        "api_calls": 30050,
        "list_calls": 50,
        "detail_calls": 30000,
        "rows_per_second": 500,
        "rss_max_during_import_mb": 150.0,
        "rss_after_first_page_mb": 120.0,
        "naive_sample": 500,
        "naive_calls_for_all": 50050,
        "naive_seconds_for_all_extrapolated": 1100.0,
    }
    return row | changes


def _by_name(figures, start):
    [found] = [f for f in figures if f["figure"].startswith(start)]
    return found


def test_import_targets_are_judged_against_the_naive_importer_and_the_floor(run_all):
    figures = run_all.import_figures([_import_row()])
    wall = _by_name(figures, "import 50,000 orders (20 ms/call): wall time")
    assert (wall["value"], wall["baseline"], wall["ratio"], wall["met"]) == (
        100.0,
        1100.0,
        11,
        True,
    )
    cert = _by_name(figures, "import 50,000: certificate phase")
    assert (cert["baseline"], cert["ratio"], cert["met"]) == (75.0, 1.17, True)
    assert _by_name(figures, "import 50,000: metadata phase")["met"] is True

    slow = run_all.import_figures(
        [_import_row(wall_seconds=200.0, metadata_seconds=21.0, certificates_ratio_to_floor=2.4)]
    )
    assert _by_name(slow, "import 50,000 orders (20 ms/call): wall time")["met"] is False
    assert _by_name(slow, "import 50,000: metadata phase")["met"] is False
    assert _by_name(slow, "import 50,000: certificate phase")["met"] is False


def _page(p95, bare_p95):
    figures = {"p50": p95 / 2, "p95": p95, "p99": p95 + 1}
    bare = {"p50": bare_p95 / 2, "p95": bare_p95, "p99": bare_p95}
    return {
        "one": figures,
        "many": figures,
        "bare": bare,
        "bare_many": bare,
        "ratio_one": p95 / bare_p95,
        "ratio_many": p95 / bare_p95,
    }


def _pages_report(pages):
    return {
        "rows": 100000,
        "clients": 8,
        "pages": pages,
        "mixed": {
            "seconds": 60,
            "requests_per_second": 150.0,
            "errors": 2,
            "healthz_requests_per_second": 600.0,
            "healthz_errors": 0,
        },
        "cold_start": {
            "healthz_seconds": 1.5,
            "signed_in_seconds": 3.2,
            "empty_healthz_seconds": 1.4,
            "empty_signed_in_seconds": 1.9,
            "rss_started_mb": 110.0,
            "empty_rss_started_mb": 100.0,
        },
        "memory_after_run": {"rss_mb": 140.0, "peak_rss_mb": 150.0},
    }


def test_a_page_meets_its_target_only_under_100_ms_and_under_3x_its_bare_query(run_all):
    figures = run_all.page_figures(
        _pages_report(
            {"fast": _page(40.0, 20.0), "slow": _page(100.0, 50.0), "heavy": _page(60.0, 20.0)}
        )
    )
    met = {f["figure"].split(" at ")[0]: f["met"] for f in figures if "p50/p95/p99" in f["figure"]}
    assert met == {"fast": True, "slow": False, "heavy": False}
    assert _by_name(figures, "mixed read load, 8 clients")["met"] is False  # 150/s
    assert _by_name(figures, "mixed read load: errors")["met"] is False
    assert _by_name(figures, "cold start at 100,000 rows: process start to first")["met"] is True
    assert _by_name(figures, "cold start at 100,000 rows: process start to signed")["met"] is False
    table = run_all.table(figures)
    assert table.count("**no**") == 7  # slow and heavy with 1 and 8 clients, load, errors, start
    assert "| fast at 100,000 rows, 1 client: p50/p95/p99 | 20.0 / 40.0 / 41.0 ms |" in table


POLLER = {
    "pending": 1000,
    "approved": 50,
    "first_cycle": {"calls": 61, "seconds": 2.0},
    "unchanged_cycle": {"calls": 11, "seconds": 0.5},
    "ten_issued_cycle": {"calls": 21, "seconds": 0.9},
    "without_last_seen": {"calls": 61, "seconds": 2.0},
    "naive_one_by_one": {"calls": 990, "seconds": 25.0},
}


def _stand_in(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text(
        "import json, sys\n"
        "out = sys.argv[sys.argv.index('--json') + 1] if '--json' in sys.argv else None\n" + body
    )


def test_the_runner_collects_a_scripts_figures_and_fails_when_one_fails(
    run_all, tmp_path, monkeypatch
):
    bench = tmp_path / "bench"
    bench.mkdir()
    _stand_in(bench, "orders_poller.py", f"open(out, 'w').write(json.dumps({POLLER!r}))\n")
    monkeypatch.setattr(run_all, "BENCH", bench)
    out = tmp_path / "results.json"
    argv = ["run_all.py", "--only", "poller", "--out", str(out), "--logs", str(tmp_path / "logs")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as ended:
        run_all.main()
    assert ended.value.code == 0
    results = json.loads(out.read_text())
    assert results["mode"] == "full"
    assert {"cpu", "cores", "ram_gb", "python", "sqlite", "postgresql"} <= set(results["machine"])
    unchanged = _by_name(results["figures"], "poller, 1,000 pending: calls per unchanged cycle")
    assert (unchanged["value"], unchanged["baseline"], unchanged["met"]) == (11, 990, True)
    assert [s["exit"] for s in results["scripts"]] == [0]

    _stand_in(bench, "orders_poller.py", "sys.exit(3)\n")
    with pytest.raises(SystemExit) as ended:
        run_all.main()
    assert ended.value.code == 1
    results = json.loads(out.read_text())
    assert results["figures"] == []
    assert [s["exit"] for s in results["scripts"]] == [3]
