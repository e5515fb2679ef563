"""Run every Strongroom benchmark in turn, then print a summary of the targets.

    .venv/bin/python benchmarks/run_all.py [--quick] [--workdir DIR] [--rounds N]
        [--only bench_small,bench_proof] [--skip bench_backup]

bench_backup (strongroom vs restic and borg on a 1 GiB tree) takes many minutes and needs
restic and borg on PATH: leave it out with ``--skip bench_backup``.

Each script runs in its own process (so one's memory or page cache does not skew the
next) and writes its own table and ``benchmarks/out/<name>.json``; the summary is read
back from those files. Exit status is non-zero if a script failed (a missed target is
reported, not a failure).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import BENCH_DIR, OUT_DIR, log

SCRIPTS = ("bench_small", "bench_large", "bench_verify", "bench_proof", "bench_s3", "bench_backup")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    p.add_argument("--workdir", type=Path, default=None, help="passed to every script")
    p.add_argument("--rounds", type=int, default=None, help="passed to every script")
    p.add_argument("--only", default="", help="comma-separated subset of " + ", ".join(SCRIPTS))
    p.add_argument(
        "--skip",
        default="",
        help="comma-separated scripts to leave out (e.g. bench_backup, which takes minutes)",
    )
    args = p.parse_args()
    skip = set(args.skip.split(","))
    chosen = [s for s in SCRIPTS if (not args.only or s in args.only.split(",")) and s not in skip]
    extra: list[str] = []
    if args.quick:
        extra.append("--quick")
    if args.workdir is not None:
        extra += ["--workdir", str(args.workdir)]
    if args.rounds is not None:
        extra += ["--rounds", str(args.rounds)]
    failed: list[str] = []
    times: dict[str, float] = {}
    for name in chosen:
        log(f"=== {name} {' '.join(extra)}")
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, str(BENCH_DIR / f"{name}.py"), *extra])
        times[name] = time.perf_counter() - t0
        if code != 0:
            failed.append(name)
            log(f"{name} FAILED with exit status {code}")
    print("\n== summary ==")
    for name in chosen:
        path = OUT_DIR / f"{name}.json"
        if name in failed or not path.exists():
            print(f"{name}: FAILED")
            continue
        doc = json.loads(path.read_text())
        print(f"{name} ({times[name]:.0f} s{', quick' if doc.get('quick') else ''}):")
        for m in doc["metrics"]:
            if m["target"] is None:
                continue
            mark = {True: "ok", False: "MISS", None: "?"}[m["target_met"]]
            ratio = f", ratio {m['ratio']:.2f}" if m["ratio"] is not None else ""
            print(
                f"  {mark:4} {m['name']}: {m['median']:.4g} {m['unit']}{ratio} "
                f"(target {m['target']})"
            )
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
