"""Benchmark: what hostile uploads cost CertDesk before it refuses them.

Usage: .venv/bin/python bench/hostile_uploads.py [--repeat R]

Prints, per input, the CPU time of this thread (the least of R runs) for:
- PEM parsing of adversarial files of BEGIN lines at 256 KiB, 512 KiB and 1 MiB (the upload
  limit), and the ratio between sizes: a linear parser doubles (ratio ~2), a quadratic one
  quadruples (the regex it replaced took 33 s at 300 KB);
- refusing an encrypted PKCS#8 key and a PKCS#12 file that ask for 200 million PBKDF2 rounds (read
  from the file, nothing derived: opening them would take about half a minute);
- checking and opening a usual PKCS#12 file (2,048 rounds), and an OpenSSL `-legacy` one, whose
  40-bit RC2 the check decrypts in Python to look for keys inside.
Targets: every refusal well under 100 ms; 1 MiB of BEGIN lines under 100 ms; ratios under 3.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.certs import hostile  # noqa: E402
from tests.unit.certs.factory import MiniPki, p12  # noqa: E402
from webapp import kdfcost, pki  # noqa: E402


def cpu(func, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        with contextlib.suppress(pki.PkiError):
            func()
        best = min(best, time.thread_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print("PEM parsing, adversarial input (BEGIN lines), CPU ms:")
    previous = None
    for kib in (256, 512, 1024):
        data = b"-----BEGIN A-----\n" * (kib * 1024 // 18)
        ms = cpu(lambda d=data: pki.read_certificates(d), args.repeat) * 1000
        ratio = f"  x{ms / previous:.2f} for twice the size" if previous else ""
        print(f"  {kib:5d} KiB  read_certificates {ms:8.1f} ms{ratio}")
        previous = ms

    t = MiniPki()
    key, cert = t.leaf("bench.example.com")
    edited_key = hostile.pem(hostile.encrypted_pkcs8(key, "pw", stated=200_000_000, used=2048))
    edited_p12 = hostile.with_mac_rounds(p12(key, cert, t.chain, "pw-123456"), 200_000_000)
    usual_p12 = p12(key, cert, t.chain, "pw-123456")
    print("Key files (CPU ms, least of runs):")
    rows = [
        ("PKCS#8 asking 200M rounds: refused", lambda: pki.load_private_key(edited_key, "pw")),
        ("PKCS#12 MAC asking 200M rounds: refused", lambda: pki.read_certificates(edited_p12, "x")),
        ("usual PKCS#12: cost check only", lambda: kdfcost.check_pkcs12(usual_p12, b"pw-123456")),
        ("usual PKCS#12: check and open", lambda: pki.read_certificates(usual_p12, "pw-123456")),
        (
            "legacy RC2-40 PKCS#12: cost check only",
            lambda: kdfcost.check_pkcs12(hostile.LEGACY_P12, hostile.LEGACY_P12_PASSWORD.encode()),
        ),
    ]
    for label, func in rows:
        print(f"  {label:42s} {cpu(func, args.repeat) * 1000:8.2f} ms")


if __name__ == "__main__":
    main()
