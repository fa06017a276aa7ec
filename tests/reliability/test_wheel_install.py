"""`pip install .` (not editable) into a fresh venv gives a working CertDesk (with the versions of
constraints.txt, as `make` installs them)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.live import free_port

REPO = Path(__file__).resolve().parents[2]


def test_wheel_install_runs_create_admin_and_serve(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(wheels.glob("certdesk-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin/pip"),
            "install",
            "--quiet",
            "-c",
            str(REPO / "constraints.txt"),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    certdesk = str(venv / "bin/certdesk")
    run_dir = tmp_path / "elsewhere"  # away from the source tree, so nothing leaks in from it
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTDESK_")}
    env.update(
        CERTDESK_INSTANCE=str(tmp_path / "instance"),
        CERTDESK_ADMIN_PASSWORD="wheel pass 123",
        PYTHONPATH="",
    )
    made = subprocess.run(
        [certdesk, "create-admin", "wheeladmin"],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert "Administrator wheeladmin created." in made.stdout

    port = free_port()
    proc = subprocess.Popen(
        [certdesk, "serve", "--port", str(port)],
        cwd=run_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                resp = requests.get(base + "/login", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.2)
        assert resp.status_code == 200 and "Sign in" in resp.text
        css = requests.get(base + "/static/vendor/pico-2.1.1.min.css", timeout=5)
        assert css.status_code == 200 and "Pico CSS" in css.text
        assert requests.get(base + "/healthz", timeout=5).json()["database"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)
