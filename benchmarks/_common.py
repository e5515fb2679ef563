"""Shared helpers for the Strongroom benchmarks (not a benchmark itself).

Every benchmark script:

- takes ``--quick`` (small sizes, < 1 min), ``--workdir DIR`` (temporary data goes in a
  fresh sub-directory of it, removed at the end; default ``benchmarks/out/``),
  ``--rounds N`` (>= 3) and ``--keep`` (do not remove the temporary data);
- collects every figure as a list of samples (one per round) and reports the median;
- prints one table with the ratio of each figure to its baseline and the target;
- writes the same results as JSON to ``benchmarks/out/<name>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import random
import resource
import shutil
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
BIN_DIR = Path(sys.executable).parent
STRONGROOM = BIN_DIR / "strongroom"
MIB = 1 << 20


# --- command line and work directory ------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run (< 1 min)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="temporary data goes in a fresh sub-directory of this (default: benchmarks/out/)",
    )
    p.add_argument("--rounds", type=int, default=3, help="rounds per figure (>= 3; default 3)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data")
    return p


def check_rounds(args: argparse.Namespace) -> int:
    rounds = int(args.rounds)
    if rounds < 3:
        raise SystemExit("--rounds must be at least 3 (every figure is a median of >= 3 runs)")
    return rounds


@contextmanager
def workdir(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """A fresh directory under ``--workdir`` (or benchmarks/out/), removed afterwards."""
    base: Path = args.workdir if args.workdir is not None else OUT_DIR
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
    try:
        yield d
    finally:
        if args.keep:
            print(f"(kept temporary data in {d})", file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- results ------------------------------------------------------------------------------


Op = Literal[">=", "<="]


@dataclass(frozen=True, slots=True)
class Target:
    """``value OP bound``; ``on`` is "value" (the median) or "ratio" (to the baseline)."""

    op: Op
    bound: float
    on: Literal["value", "ratio"] = "value"

    def met(self, value: float, ratio: float | None) -> bool | None:
        x = value if self.on == "value" else ratio
        if x is None:
            return None
        return x >= self.bound if self.op == ">=" else x <= self.bound

    def __str__(self) -> str:
        if self.on == "ratio":
            return f"ratio {self.op} {self.bound:g}"
        return f"{self.op} {self.bound:g}"


@dataclass(slots=True)
class Metric:
    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    baseline: str | None = None  # name of the metric this one is compared with
    target: Target | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")


class Results:
    """The figures of one benchmark script, in the order they were declared."""

    def __init__(self, script: str, args: argparse.Namespace) -> None:
        self.script = script
        self.args = args
        self.metrics: dict[str, Metric] = {}
        self.info: dict[str, Any] = {}
        self.notes: list[str] = []
        self.started = datetime.now(UTC)

    def metric(
        self,
        name: str,
        unit: str,
        *,
        baseline: str | None = None,
        target: Target | None = None,
        note: str = "",
    ) -> Metric:
        m = self.metrics.get(name)
        if m is None:
            m = Metric(name, unit, baseline=baseline, target=target, note=note)
            self.metrics[name] = m
        return m

    def add(self, name: str, value: float) -> None:
        self.metrics[name].samples.append(value)

    def ratio(self, m: Metric) -> float | None:
        if m.baseline is None:
            return None
        base = self.metrics[m.baseline].median
        if not base or math.isnan(base):
            return None
        return m.median / base

    def table(self) -> str:
        head = ("figure", "median", "unit", "min", "max", "runs", "ratio", "vs", "target", "")
        rows: list[tuple[str, ...]] = [head]
        for m in self.metrics.values():
            r = self.ratio(m)
            met = m.target.met(m.median, r) if m.target else None
            rows.append(
                (
                    m.name,
                    _fmt(m.median),
                    m.unit,
                    _fmt(min(m.samples)) if m.samples else "-",
                    _fmt(max(m.samples)) if m.samples else "-",
                    str(len(m.samples)),
                    f"{r:.2f}" if r is not None else "-",
                    m.baseline or "-",
                    str(m.target) if m.target else "",
                    {True: "ok", False: "MISS", None: ""}[met],
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = []
        for k, row in enumerate(rows):
            cells = [
                c.ljust(w) if i in (0, 2, 7, 8, 9) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        metrics = []
        for m in self.metrics.values():
            r = self.ratio(m)
            metrics.append(
                {
                    "name": m.name,
                    "unit": m.unit,
                    "median": m.median,
                    "samples": m.samples,
                    "baseline": m.baseline,
                    "ratio": r,
                    "target": str(m.target) if m.target else None,
                    "target_met": m.target.met(m.median, r) if m.target else None,
                    "note": m.note,
                }
            )
        return {
            "script": self.script,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": bool(self.args.quick),
            "rounds": int(self.args.rounds),
            "machine": machine(),
            "info": self.info,
            "notes": self.notes,
            "metrics": metrics,
        }

    def report(self, title: str) -> Path:
        """Print the table and notes; write benchmarks/out/<script>.json."""
        print()
        print(f"== {title} ==")
        for k, v in self.info.items():
            print(f"   {k}: {v}")
        print()
        print(self.table())
        for n in self.notes:
            print(f"note: {n}")
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        path = OUT_DIR / f"{self.script}.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        print(f"\nresults written to {path}")
        return path


def _fmt(x: float, small: int = 4) -> str:
    """A figure for a table: thousands separators, fewer decimals as it grows."""
    if math.isnan(x):
        return "nan"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.{small}f}"


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(samples)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in load],
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


# --- child processes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildRun:
    """One finished child process: wall time and its own resource usage."""

    wall: float
    user: float
    sys: float
    max_rss_mb: float  # peak resident set size, MB (10^6 bytes)
    stdout: Path
    stderr: Path

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def cores(self) -> float:
        """Average number of cores busy: (user + sys) / wall."""
        return self.cpu / self.wall if self.wall > 0 else 0.0


def run_child(
    argv: Sequence[str], out_dir: Path, label: str, env: dict[str, str] | None = None
) -> ChildRun:
    """Run ``argv`` with stdout/stderr to files; measure only that child (``os.wait4``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = out_dir / f"{label}.out", out_dir / f"{label}.err"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(stdout), flags, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, str(stderr), flags, 0o644),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawn(
        argv[0], list(argv), env if env is not None else dict(os.environ), file_actions=actions
    )
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = stderr.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{label}: {' '.join(argv[:6])} ... exited with {code}:\n{tail}")
    # ru_maxrss is in KiB on Linux
    return ChildRun(
        wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss * 1024 / 1e6, stdout, stderr
    )


def self_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# --- vaults -------------------------------------------------------------------------------


def make_key(path: Path) -> Path:
    from strongroom.crypto import new_key_file_text

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new_key_file_text())
    return path


def create_vault(vault_dir: Path, key: Path) -> None:
    """Create an empty vault (key-file unlocked) and close it."""
    from strongroom.vault.vault import Options, Secret, Vault

    v = Vault.create(
        str(vault_dir), Secret(key_file=key), Options(actor="user:bench", kdf_strength="test")
    )
    v.close()


def cli(vault_dir: Path, key: Path, *args: str) -> list[str]:
    return [
        str(STRONGROOM),
        "--vault",
        str(vault_dir),
        "--key-file",
        str(key),
        "--actor",
        "user:bench",
        *args,
    ]


def tree_bytes(root: Path) -> tuple[int, list[Path]]:
    """Total size and list of the regular files under ``root``."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return sum(p.stat().st_size for p in files), files


# --- synthetic content --------------------------------------------------------------------


def vocabulary(seed: int = 7, size: int = 5000) -> tuple[list[str], list[float]]:
    """Pseudo-words with Zipf weights (cumulative), so text compresses like prose (~3x)."""
    rng = random.Random(seed)
    # the set is sorted before shuffling: its own order depends on the process's string
    # hash seed, and the words (so every generated text) must not
    unique = sorted(
        {
            "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 10)))
            for _ in range(size * 2)
        }
    )
    words = sorted(unique, key=lambda w: rng.random())[:size]
    cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(words))))
    return words, cum


def text(rng: random.Random, words: list[str], cum: list[float], n_words: int) -> str:
    return " ".join(rng.choices(words, cum_weights=cum, k=n_words))


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def parse_size(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    for suffix in ("IB", "B"):
        if s.endswith(suffix) and len(s) > len(suffix) and s[-len(suffix) - 1] in mult:
            s = s[: -len(suffix)]
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)
