"""Backup: ``strongroom backup`` / ``restore`` / ``verify`` side by side with restic and borg.

One generated dataset (``--size``, default 1 GiB, in ``--files``, default 59,000 files),
deterministic from ``--seed``, written in the work directory (on disk, next to the
repositories — not tmpfs):

- a directory tree of hundreds of directories, up to 7 levels deep, files spread over it
  unevenly;
- file sizes skewed: ~97% small files (log-normal around 3 KiB), ~3% of hundreds of KiB,
  about one in 5,000 (at least 2) of tens of MiB;
- half the bytes incompressible (an AES-256-CTR keystream keyed from the seed), half
  text-like (4-16 KiB pieces of an 8 MiB pool of generated prose, each file under its
  own letter substitution: zstd-3 shrinks it ~2.2x in 3 KiB files, ~3.5x in 1 MiB;
  nothing deduplicates); the large files alternate 1-4 MiB blocks of both.

Then a mutation changes ~5% of the bytes: bytes **inserted** in the middle of half of
the large files (where content-defined chunking matters), small and medium files
rewritten, appended to or overwritten in place, new files (and directories) added, and
~0.5% of the files deleted — deterministic too.

Every round, for each tool in turn (the order rotates every round), on a fresh
repository: init, first backup of the dataset; then (after the mutation, applied once per
round) the incremental backup; a full restore of the latest snapshot into an empty
directory — checked, outside the timing, against the mutated dataset (same file list,
same SHA-256 of every file; any difference fails the run); the tool's full-data check;
the repository's size on disk. Each command runs in a child process measured with
``os.wait4``: wall time (start-up and key derivation included) and peak RSS. The dataset
is regenerated (identically) at the start of every round. Nothing is dropped from the
page cache between steps; ``sync`` runs before every command (so one step's write-back is
not charged to the next), and before every command the files it reads (the dataset for a
backup, the repository for a restore or a check) are read once, outside the timing, so
that every tool starts warm: borg drops the files it has read from the page cache
(``posix_fadvise(DONTNEED)``), and without this step whichever tool ran after borg read
the dataset from disk. ``--cold`` does the opposite: the page cache is dropped
(``/proc/sys/vm/drop_caches``, needs root) before every command. Commands are started
from a small helper process: a child's ``ru_maxrss`` includes the peak RSS of the process
it was forked from, so spawning from this one (hundreds of MB) would inflate every figure.

- restic (0.14): repository format 2, ``--compression auto`` (zstd); ``backup DIR``;
  ``restore latest --target OUT``; ``check --read-data``.
- borg (1.2): ``init -e repokey``; ``create --compression zstd,3`` (borg's default is
  lz4); ``extract`` (in OUT); ``check --verify-data``. Reported, not a baseline.
- strongroom: ``init --new-key-file`` (``--strongroom-passphrase``: unlock with
  STRONGROOM_PASSPHRASE, like restic and borg, instead); ``backup DIR --json``;
  ``restore latest --target OUT``; ``verify`` (reads every pack, authenticates and
  decompresses every blob).

Targets, as ratios strongroom / restic of the medians: first backup <= 0.8, incremental
<= 0.8, restore <= 1.0, full verify <= 1.0, repository size <= 1.05, peak RSS (the
largest over all of a tool's commands) <= 1.5.

    .venv/bin/python benchmarks/bench_backup.py [--quick] [--size 1G] [--files 59000]
        [--rounds 3] [--only strongroom,restic,borg] [--seed 1] [--keep] [--workdir DIR]
        [--strongroom-passphrase] [--cold]

``--quick``: 32 MiB in 2,000 files (~1 min). The default size takes ~20-25 minutes for
the three tools. Installs nothing: restic and borg must be on PATH (Debian packages
restic, borgbackup; scripts/bootstrap.sh --test installs them). If a command fails, its
logs are copied to benchmarks/out/bench_backup-logs/.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import zstandard
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from _common import (
    MIB,
    OUT_DIR,
    ROOT,
    STRONGROOM,
    ChildRun,
    Metric,
    Results,
    Target,
    _fmt,
    check_rounds,
    fmt_bytes,
    log,
    parse_size,
    parser,
    text,
    vocabulary,
    workdir,
)

NAME = "bench_backup"
TOOLS = ("strongroom", "restic", "borg")
BASELINE = "restic"
PASSPHRASE = "bench-backup-passphrase"
ACTOR = "user:bench"
KIB = 1 << 10
MAX_DEPTH = 7

# step -> (label in the table, unit, target on the ratio strongroom / restic)
STEPS: dict[str, tuple[str, str, Target | None]] = {
    "init": ("init", "s", None),
    "backup1": ("first backup", "s", Target("<=", 0.8, "ratio")),
    "backup2": ("incremental backup", "s", Target("<=", 0.8, "ratio")),
    "restore": ("restore", "s", Target("<=", 1.0, "ratio")),
    "verify": ("full verify", "s", Target("<=", 1.0, "ratio")),
    "size1": ("repository size, first backup", "B", None),
    "size": ("repository size", "B", Target("<=", 1.05, "ratio")),
    "cache": ("client cache / local state", "B", None),
    "rss_backup1": ("peak RSS first backup", "MB", None),
    "rss_backup2": ("peak RSS incremental", "MB", None),
    "rss_restore": ("peak RSS restore", "MB", None),
    "rss_verify": ("peak RSS verify", "MB", None),
    "rss": ("peak RSS (max of commands)", "MB", Target("<=", 1.5, "ratio")),
}


# --- deterministic content ------------------------------------------------------------------


@functools.cache
def _text_pool(seed: int, size: int = 8 * MIB) -> bytes:
    """``size`` bytes of generated prose (Zipf-weighted pseudo-words, lines)."""
    rng = random.Random(f"{seed}/pool")
    words, cum = vocabulary()
    parts: list[str] = []
    n = 0
    while n < size:
        line = text(rng, words, cum, rng.randint(6, 24))
        line = line[0].upper() + line[1:] + (".\n" if rng.random() < 0.8 else ".\n\n")
        parts.append(line)
        n += len(line)
    return "".join(parts).encode()[:size]


@functools.cache
def _substitutions(seed: int, n: int = 4096) -> list[bytes]:
    """``n`` translation tables, each a random permutation of the lowercase letters."""
    rng = random.Random(f"{seed}/tables")
    lower = string.ascii_lowercase
    tables = []
    for _ in range(n):
        perm = list(lower)
        rng.shuffle(perm)
        tables.append(bytes.maketrans(lower.encode(), "".join(perm).encode()))
    return tables


class Content:
    """Deterministic bytes from (seed, label): random (AES-CTR keystream) or text-like.

    A text "document" (a file, or one block of a large file) is made of 4-16 KiB pieces
    of an 8 MiB prose pool at random offsets, the whole under one letter substitution
    (one of 4096, drawn per document): it compresses like prose with some repetition
    (zstd-3: ~2.2x on 3 KiB, ~3.6x on 1 MiB), no two chunks of 256 KiB or more can be
    equal, and different documents share next to nothing that zstd could match.
    """

    def __init__(self, seed: int, label: str) -> None:
        key = hashlib.sha256(f"{NAME}/{seed}/{label}".encode()).digest()
        self._ctr = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self.rng = random.Random(f"{seed}/{label}")
        self._pool = _text_pool(seed)
        self._tables = _substitutions(seed)

    def random(self, n: int) -> bytes:
        return self._ctr.update(bytes(n))

    def text(self, n: int) -> bytes:
        """One text "document" of ``n`` bytes."""
        rng, pool = self.rng, self._pool
        parts: list[bytes] = []
        left = n
        while left > 0:
            k = min(left, rng.randint(4 * KIB, 16 * KIB))
            at = rng.randrange(len(pool) - k)
            parts.append(pool[at : at + k])
            left -= k
        return b"".join(parts).translate(self._tables[rng.randrange(len(self._tables))])

    def mixed(self, n: int) -> Iterator[bytes]:
        """Alternating 1-4 MiB blocks of text and random bytes (the large files)."""
        compressible = self.rng.random() < 0.5
        left = n
        while left > 0:
            k = min(left, self.rng.randint(1 * MIB, 4 * MIB))
            yield self.text(k) if compressible else self.random(k)
            compressible = not compressible
            left -= k

    def of(self, kind: str, n: int) -> bytes:
        if kind == "text":
            return self.text(n)
        if kind == "random":
            return self.random(n)
        return b"".join(self.mixed(n))


# --- the dataset ----------------------------------------------------------------------------

# no .py: the dataset may sit under benchmarks/out/, which mypy checks
EXTS = {
    "text": ("txt", "md", "json", "csv", "log", "html", "xml", "c"),
    "random": ("bin", "jpg", "png", "gz", "zip", "pdf"),
    "mixed": ("tar", "img", "db", "vmdk"),
}


@dataclass(frozen=True, slots=True)
class FileSpec:
    path: str  # relative, "/"-separated
    size: int
    kind: str  # "text", "random" or "mixed"


@dataclass(slots=True)
class Plan:
    dirs: list[str]
    files: list[FileSpec]
    stats: dict[str, object] = field(default_factory=dict)


def _clamp(x: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(x)))


def plan_dataset(size: int, n_files: int, seed: int) -> Plan:
    """Directory tree, file sizes and kinds; exactly ``size`` bytes in ``n_files`` files."""
    if n_files < 20:
        raise SystemExit("--files must be at least 20")
    rng = random.Random(f"{seed}/plan")
    words, _ = vocabulary()
    n_large = max(2, round(n_files * 12 / 59_000))
    n_medium = max(4, round(n_files * 0.03))
    n_small = n_files - n_large - n_medium
    small = [
        _clamp(rng.lognormvariate(math.log(3 * KIB), 0.9), 64, 96 * KIB) for _ in range(n_small)
    ]
    medium = [
        _clamp(rng.lognormvariate(math.log(200 * KIB), 0.6), 96 * KIB, 2 * MIB)
        for _ in range(n_medium)
    ]
    large = [rng.randint(8 * MIB, 64 * MIB) for _ in range(n_large)]
    rest, big = size - sum(small), sum(medium) + sum(large)
    if rest >= 0.3 * size:  # the usual case: medium and large files take what is left
        medium = [max(1, round(s * rest / big)) for s in medium]
        large = [max(1, round(s * rest / big)) for s in large]
    else:  # few bytes for many files: scale everything
        f = size / (sum(small) + big)
        small, medium, large = ([max(1, round(s * f)) for s in xs] for xs in (small, medium, large))
    large[-1] += size - sum(small) - sum(medium) - sum(large)
    if large[-1] < 1:
        raise SystemExit(f"--size {size} is too small for --files {n_files}")

    # directories: random recursive tree, names from the vocabulary
    n_dirs = max(8, n_files // 150)
    dirs, depth = [""], {"": 0}
    for i in range(n_dirs):
        parent = rng.choice(dirs)
        while depth[parent] >= MAX_DEPTH:
            parent = rng.choice(dirs)
        d = f"{parent}/{rng.choice(words)}{i}".lstrip("/")
        dirs.append(d)
        depth[d] = depth[parent] + 1
    # files land in directories unevenly (Zipf-like weights over a shuffled order)
    order = dirs[:]
    rng.shuffle(order)
    weights = [1.0 / (k + 1) ** 0.7 for k in range(len(order))]

    # kinds: 70% of small files text-like, large files mixed, medium files balance the
    # whole to half text / half random bytes
    kinds = ["text" if rng.random() < 0.7 else "random" for _ in small]
    text_b = sum(s for s, k in zip(small, kinds, strict=True) if k == "text") + sum(large) // 2
    rand_b = sum(small) + sum(large) - text_b
    for s in medium:
        k = "text" if text_b <= rand_b else "random"
        kinds.append(k)
        text_b, rand_b = (text_b + s, rand_b) if k == "text" else (text_b, rand_b + s)
    kinds += ["mixed"] * len(large)
    sizes = small + medium + large
    idx = list(range(len(sizes)))
    rng.shuffle(idx)  # write order: classes interleaved
    where = rng.choices(order, weights=weights, k=len(sizes))
    files = []
    for n, i in enumerate(idx):
        kind = kinds[i]
        name = f"{rng.choice(words)}-{n}.{rng.choice(EXTS[kind])}"
        files.append(FileSpec(f"{where[n]}/{name}".lstrip("/"), sizes[i], kind))
    plan = Plan(dirs, files)
    plan.stats = {
        "files": len(files),
        "directories": len(dirs),
        "max depth": max(depth.values()),
        "small/medium/large files": f"{n_small}/{n_medium}/{n_large}",
        "largest file": fmt_bytes(max(sizes)),
        "median file": fmt_bytes(statistics.median(sizes)),
        "text-like share of bytes": round(text_b / (text_b + rand_b), 3),
    }
    return plan


def _write(path: Path | str, data: bytes | Iterator[bytes]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for piece in [data] if isinstance(data, bytes) else data:
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def generate(root: Path, plan: Plan, seed: int) -> None:
    """Write the dataset. The content takes ~1 s per GiB; the rest is the kernel's (file
    creation and page-cache writes; 2 writer threads do not help on ext4)."""
    content = Content(seed, "data")
    for d in plan.dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in plan.files:
        data = content.mixed(f.size) if f.kind == "mixed" else content.of(f.kind, f.size)
        _write(f"{root}/{f.path}", data)


def mutate(root: Path, plan: Plan, seed: int, share: float = 0.05) -> dict[str, object]:
    """Change ~``share`` of the bytes: insertions into large files, edits, new files,
    deletions. Returns what was done."""
    content = Content(seed, "mutate")
    rng = content.rng
    total = sum(f.size for f in plan.files)
    budget = int(total * share)
    touched: set[str] = set()

    # 1. insertions in the middle of half the large files (40% of the budget): one of a
    #    few bytes, then 2-5 of up to hundreds of KiB, at random offsets
    large = [f for f in plan.files if f.kind == "mixed"]
    chosen = rng.sample(large, max(1, len(large) // 2))
    inserted = insertions = 0
    for f in chosen:
        path = root / f.path
        data = path.read_bytes()
        want = int(budget * 0.4 / len(chosen))
        n_big = rng.randint(2, 5)
        sizes = [rng.randint(1, 64)] + [max(1, want // n_big) for _ in range(n_big)]
        cuts = sorted(rng.randrange(len(data) + 1) for _ in sizes)
        pieces, at = [], 0
        for cut, n in zip(cuts, sizes, strict=True):
            pieces.append(data[at:cut])
            pieces.append(content.text(n) if rng.random() < 0.5 else content.random(n))
            at = cut
        pieces.append(data[at:])
        _write(path, b"".join(pieces))
        inserted += sum(sizes)
        insertions += len(sizes)
        touched.add(f.path)

    # 2. small and medium files edited (30%): rewritten, appended to, overwritten in place
    others = [f for f in plan.files if f.kind != "mixed"]
    rng.shuffle(others)
    edited = edits = 0
    ops = {"rewrite": 0, "append": 0, "overwrite": 0}
    for f in others:
        if edited >= budget * 0.3:
            break
        path = root / f.path
        op = rng.choice(tuple(ops))
        if op == "rewrite":
            n = max(1, int(f.size * rng.uniform(0.8, 1.2)))
            _write(path, content.of(f.kind, n))
        elif op == "append":
            n = rng.randint(16, max(16, f.size // 4))
            with path.open("ab") as fh:
                fh.write(content.of(f.kind, n))
        else:
            n = rng.randint(1, max(1, f.size // 2))
            with path.open("r+b") as fh:
                fh.seek(rng.randrange(max(1, f.size - n + 1)))
                fh.write(content.of(f.kind, n))
        ops[op] += 1
        edited += n
        edits += 1
        touched.add(f.path)

    # 3. new files (30%), in existing directories and in a few new ones
    words, _ = vocabulary()
    dirs = plan.dirs[:]
    for i in range(3):
        d = f"{rng.choice(dirs)}/new-{rng.choice(words)}{i}".lstrip("/")
        (root / d).mkdir(parents=True, exist_ok=True)
        dirs.append(d)
    added = new_files = 0
    while added < budget * 0.3:
        if rng.random() < 0.05:
            n = _clamp(rng.lognormvariate(math.log(200 * KIB), 0.6), 96 * KIB, 2 * MIB)
        else:
            n = _clamp(rng.lognormvariate(math.log(3 * KIB), 0.9), 64, 96 * KIB)
        kind = "text" if rng.random() < 0.6 else "random"
        name = f"{rng.choice(words)}-new{new_files}.{rng.choice(EXTS[kind])}"
        _write(root / rng.choice(dirs).lstrip("/") / name, content.of(kind, n))
        added += n
        new_files += 1

    # 4. ~0.5% of the (untouched) files deleted
    cands = [f for f in plan.files if f.path not in touched]
    gone = rng.sample(cands, max(1, len(plan.files) // 200))
    for f in gone:
        (root / f.path).unlink()
    changed = inserted + edited + added
    return {
        "changed bytes": f"{fmt_bytes(changed)} ({changed / total:.1%} of the dataset)",
        "inserted": f"{fmt_bytes(inserted)} in {insertions} insertions into {len(chosen)} "
        "large files",
        "edited": f"{fmt_bytes(edited)} in {edits} small/medium files "
        f"({ops['rewrite']} rewritten, {ops['append']} appended to, "
        f"{ops['overwrite']} overwritten in place)",
        "added": f"{fmt_bytes(added)} in {new_files} new files (3 new directories)",
        "deleted": f"{len(gone)} files, {fmt_bytes(sum(f.size for f in gone))}",
    }


Manifest = dict[str, tuple[int, str]]


def manifest(root: Path) -> Manifest:
    """Relative path -> (size, SHA-256) of every file under ``root`` (anything else than a
    regular file or a directory is listed with its type, so it shows as a difference)."""
    out: Manifest = {}
    regular: list[str] = []
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    regular.append(e.path)
                else:
                    st = e.stat(follow_symlinks=False)
                    out[os.path.relpath(e.path, root)] = (st.st_size, f"mode {st.st_mode:o}")

    def digest(p: str) -> tuple[int, str]:
        with open(p, "rb") as f:
            h = hashlib.file_digest(f, "sha256")
            return os.fstat(f.fileno()).st_size, h.hexdigest()

    with ThreadPoolExecutor(max_workers=4) as pool:
        for p, d in zip(regular, pool.map(digest, regular, chunksize=64), strict=True):
            out[os.path.relpath(p, root)] = d
    return out


def check_restore(out: Path, src: Path, expected: Manifest, label: str) -> None:
    """Fail loudly unless the restored tree has exactly the expected files and contents."""
    first = min(expected)
    candidates = [out / src.relative_to(src.anchor), out / src.name, out]
    root = next((c for c in candidates if (c / first).exists()), out)
    got = manifest(root)
    if got == expected:
        return
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    differ = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    raise RuntimeError(
        f"{label}: the restored tree in {root} differs from the dataset: "
        f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]}), "
        f"{len(differ)} with other content (e.g. {differ[:3]})"
    )


def disk_usage(root: Path) -> int:
    """Bytes allocated on disk under ``root`` (like ``du -s --block-size=1``)."""
    if not root.exists():
        return 0
    total, seen = 0, set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames, "."):
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def text_ratio(seed: int) -> float:
    """zstd-3 ratio of the text-like content, on 1 MiB pieces."""
    content = Content(seed, "ratio")
    zc = zstandard.ZstdCompressor(level=3)
    raw = packed = 0
    for _ in range(8):
        piece = content.text(MIB)
        raw += len(piece)
        packed += len(zc.compress(piece))
    return raw / packed


# --- the tools ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cmd:
    argv: list[str]
    cwd: Path | None = None


# Commands are started by a small helper process, not by this one: on Linux a child's
# ru_maxrss includes the peak RSS of the process it was forked (or vforked, as with
# posix_spawn) from, because exec records the old address space's high-water mark. Started
# from here (hundreds of MB: file lists, manifests, a large file being mutated), every
# command would show at least this process's peak. The helper (python -I -S) puts a floor
# of ~4 MB instead.
SPAWNER = r"""
import json, os, sys, time
W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
for line in sys.stdin:
    q = json.loads(line)
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(q["stdout"], W, 0o644), 1)
            os.dup2(os.open(q["stderr"], W, 0o644), 2)
            if q["cwd"]:
                os.chdir(q["cwd"])
            os.execvpe(q["argv"][0], q["argv"], q["env"])
        except BaseException as e:
            os.write(2, ("cannot run: %r\n" % (e,)).encode())
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps([code, wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss]), flush=True)
"""


class Spawner:
    """Runs commands one at a time from the helper; measures only that child
    (``os.wait4``: wall time, CPU, peak RSS)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", SPAWNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, cmd: Cmd, logs: Path, label: str, env: dict[str, str]) -> ChildRun:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        logs.mkdir(parents=True, exist_ok=True)
        stdout, stderr = logs / f"{label}.out", logs / f"{label}.err"
        q = {
            "argv": cmd.argv,
            "cwd": str(cmd.cwd) if cmd.cwd else None,
            "env": env,
            "stdout": str(stdout),
            "stderr": str(stderr),
        }
        os.sync()  # earlier steps' write-back is not charged to this one
        self.proc.stdin.write(json.dumps(q) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{label}: the spawner helper died")
        code, wall, utime, stime, maxrss = json.loads(line)
        if code != 0:
            tail = stderr.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{label}: {' '.join(cmd.argv)} exited with {code}:\n{tail}")
        # ru_maxrss is in KiB on Linux
        return ChildRun(wall, utime, stime, maxrss * 1024 / 1e6, stdout, stderr)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


class Tool:
    """One tool on one fresh repository (and its own cache and temp directories)."""

    name = ""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.repo = base / "repo"
        self.cache = base / "cache"
        tmp = base / "tmp"
        tmp.mkdir(parents=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(base),
            "LANG": "C.UTF-8",
            "TMPDIR": str(tmp),
        }

    def init(self) -> Cmd:
        raise NotImplementedError

    def backup(self, src: Path, tag: str) -> Cmd:
        raise NotImplementedError

    def restore(self, out: Path) -> Cmd:
        raise NotImplementedError

    def verify(self) -> Cmd:
        raise NotImplementedError

    def check_backup(self, run: ChildRun, label: str) -> None:
        """Raise unless the backup's output says a snapshot was made."""


class Restic(Tool):
    name = "restic"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.env |= {"RESTIC_PASSWORD": PASSPHRASE, "RESTIC_CACHE_DIR": str(self.cache)}

    def _r(self, *args: str) -> list[str]:
        return ["restic", "--repo", str(self.repo), *args]

    def init(self) -> Cmd:
        return Cmd(self._r("init", "--repository-version", "2"))

    def backup(self, src: Path, tag: str) -> Cmd:
        return Cmd(self._r("backup", "--compression", "auto", "--tag", tag, str(src)))

    def restore(self, out: Path) -> Cmd:
        return Cmd(self._r("restore", "latest", "--target", str(out)))

    def verify(self) -> Cmd:
        return Cmd(self._r("check", "--read-data"))

    def check_backup(self, run: ChildRun, label: str) -> None:
        if " saved" not in run.stdout.read_text():
            raise RuntimeError(f"{label}: restic saved no snapshot (see {run.stdout})")


class Borg(Tool):
    name = "borg"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.env |= {
            "BORG_PASSPHRASE": PASSPHRASE,
            "BORG_BASE_DIR": str(self.cache),
            "BORG_DISPLAY_PASSPHRASE": "no",
        }
        self.last = ""

    def init(self) -> Cmd:
        return Cmd(["borg", "init", "--encryption", "repokey", str(self.repo)])

    def backup(self, src: Path, tag: str) -> Cmd:
        self.last = tag
        return Cmd(["borg", "create", "--compression", "zstd,3", f"{self.repo}::{tag}", str(src)])

    def restore(self, out: Path) -> Cmd:
        return Cmd(["borg", "extract", f"{self.repo}::{self.last}"], cwd=out)

    def verify(self) -> Cmd:
        return Cmd(["borg", "check", "--verify-data", str(self.repo)])


class Strongroom(Tool):
    name = "strongroom"

    def __init__(self, base: Path, passphrase: bool = False) -> None:
        super().__init__(base)
        self.key = None if passphrase else base / "key"
        self.cache = self.repo / "state"  # catalog, clock: inside the vault directory
        self.env |= {"STRONGROOM_PASSPHRASE": PASSPHRASE, "STRONGROOM_ACTOR": ACTOR}

    def _s(self, *args: str) -> list[str]:
        key = ["--key-file", str(self.key)] if self.key else []
        return [str(STRONGROOM), "--vault", str(self.repo), *key, "--actor", ACTOR, *args]

    def init(self) -> Cmd:
        if self.key:  # the key file does not exist yet: init creates it
            base = [str(STRONGROOM), "--vault", str(self.repo), "--actor", ACTOR]
            return Cmd([*base, "init", "--new-key-file", str(self.key)])
        return Cmd(self._s("init"))

    def backup(self, src: Path, tag: str) -> Cmd:
        return Cmd(self._s("backup", "--tag", tag, "--json", str(src)))

    def restore(self, out: Path) -> Cmd:
        return Cmd(self._s("restore", "latest", "--target", str(out)))

    def verify(self) -> Cmd:
        return Cmd(self._s("verify"))

    def check_backup(self, run: ChildRun, label: str) -> None:
        out = run.stdout.read_text()
        try:
            doc = json.loads(out)
        except ValueError:
            lines = [ln for ln in out.splitlines() if ln.strip()]
            doc = json.loads(lines[-1]) if lines else {}
        if not isinstance(doc, dict) or not doc.get("snapshot"):
            raise RuntimeError(f"{label}: backup --json printed no snapshot: {out[:500]!r}")


def warm(root: Path) -> float:
    """Read every file under ``root`` once (page cache warm for the next command);
    returns the seconds it took."""
    t0 = time.perf_counter()
    buf = bytearray(MIB)
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            try:
                fd = os.open(os.path.join(dirpath, n), os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue  # a symlink, a socket, gone: nothing to warm
            try:
                while os.readv(fd, [buf]):
                    pass
            finally:
                os.close(fd)
    return time.perf_counter() - t0


def drop_caches() -> None:
    """Empty the page cache (and dentries, inodes): the next command starts cold."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        raise SystemExit(f"--cold: cannot drop the page cache ({e}); run as root") from e


def make_tool(name: str, base: Path, args: argparse.Namespace) -> Tool:
    if name == "restic":
        return Restic(base)
    if name == "borg":
        return Borg(base)
    return Strongroom(base, passphrase=args.strongroom_passphrase)


def preflight(tools: list[str]) -> dict[str, str]:
    """Versions of the chosen tools; exit (installing nothing) if one is missing."""
    versions: dict[str, str] = {}
    missing = [t for t in tools if t != "strongroom" and shutil.which(t) is None]
    if missing:
        raise SystemExit(
            f"{', '.join(missing)} not on PATH: install the Debian packages (restic, "
            "borgbackup; scripts/bootstrap.sh --test does) or leave them out with --only"
        )
    for t in tools:
        if t == "strongroom":
            probe = subprocess.run(
                [str(STRONGROOM), "backup", "--help"], capture_output=True, check=False
            )
            if probe.returncode != 0:
                raise SystemExit(
                    f"{STRONGROOM} has no 'backup' command; run with --only restic,borg"
                )
            versions[t] = metadata.version("strongroom")
        else:
            argv = ["restic", "version"] if t == "restic" else ["borg", "--version"]
            versions[t] = subprocess.run(
                argv, capture_output=True, text=True, check=True
            ).stdout.strip()
    return versions


def git_commit() -> str:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "diff-index", "--quiet", "HEAD", "--"],
            capture_output=True,
            check=False,
            env=env,
        ).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


# --- results --------------------------------------------------------------------------------


def mname(step: str, tool: str) -> str:
    return f"{STEPS[step][0]} ({tool})"


class BackupResults(Results):
    """One row per step, one column per tool (median [min..max]), ratio to restic."""

    def __init__(self, args: argparse.Namespace, tools: list[str]) -> None:
        super().__init__(NAME, args)
        self.tools = tools
        for step, (_label, unit, target) in STEPS.items():
            for tool in TOOLS:
                if tool not in tools:
                    continue
                base = mname(step, BASELINE) if tool != BASELINE and BASELINE in tools else None
                self.metric(
                    mname(step, tool),
                    unit,
                    baseline=base,
                    target=target if tool == "strongroom" and base else None,
                )

    def table(self) -> str:
        head = ("step", *TOOLS, "strongroom/restic", "target", "met")
        rows: list[tuple[str, ...]] = [head]
        for step, (label, unit, target) in STEPS.items():
            cells = [f"{label} ({'MiB' if unit == 'B' else unit})"]
            for tool in TOOLS:
                m = self.metrics.get(mname(step, tool))
                cells.append(_cell(m, unit) if m and m.samples else "-")
            ours = self.metrics.get(mname(step, "strongroom"))
            r = self.ratio(ours) if ours and ours.samples else None
            cells.append(f"{r:.2f}" if r is not None else "-")
            cells.append(f"<= {target.bound:g}" if target else "")
            met = target.met(0.0, r) if target and r is not None else None
            cells.append({True: "yes", False: "no", None: "-" if target else ""}[met])
            rows.append(tuple(cells))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = []
        for k, row in enumerate(rows):
            out = [
                c.ljust(w) if i in (0, 5, 6) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(out).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _num(x: float) -> str:
    return _fmt(x, small=3)


def _cell(m: Metric, unit: str) -> str:
    scale = MIB if unit == "B" else 1
    xs = [s / scale for s in m.samples]
    return f"{_num(statistics.median(xs))} [{_num(min(xs))}..{_num(max(xs))}]"


# --- main -----------------------------------------------------------------------------------


def one_round(
    r: int,
    wd: Path,
    tools: list[str],
    plan: Plan,
    args: argparse.Namespace,
    res: BackupResults,
    spawner: Spawner,
) -> tuple[float, dict[str, object]]:
    """One round: every tool, every step. Returns (generation seconds, mutation stats)."""
    data = wd / "data"
    shutil.rmtree(data, ignore_errors=True)
    os.sync()  # the deletion's journal commit (and discards) is not charged to generation
    t0 = time.perf_counter()
    generate(data, plan, args.seed)
    gen_s = time.perf_counter() - t0
    log(f"round {r + 1}: generated {fmt_bytes(args.size)} in {gen_s:.2f} s")
    k = r % len(tools)
    order = tools[k:] + tools[:k]
    logs = wd / "logs"
    live: dict[str, Tool] = {}
    rss: dict[str, list[float]] = {t: [] for t in tools}

    def step(tool: Tool, name: str, cmd: Cmd, reads: Path | None = None) -> ChildRun:
        label = f"r{r}-{tool.name}-{name}"
        if args.cold:
            drop_caches()
        elif reads is not None:
            warm(reads)
        cr = spawner.run(cmd, logs, label, tool.env)
        res.add(mname(name, tool.name), cr.wall)
        if name != "init":
            res.add(mname(f"rss_{name}", tool.name), cr.max_rss_mb)
        rss[tool.name].append(cr.max_rss_mb)
        log(f"  {label}: {cr.wall:.2f} s, peak RSS {cr.max_rss_mb:.0f} MB, {cr.cores:.2f} cores")
        return cr

    for t in order:
        tool = live[t] = make_tool(t, wd / f"r{r}-{t}", args)
        step(tool, "init", tool.init())
        tool.check_backup(step(tool, "backup1", tool.backup(data, "first"), data), "first backup")
        res.add(mname("size1", t), disk_usage(tool.repo))
    stats = mutate(data, plan, args.seed)
    expected = manifest(data)
    for t in order:
        tool = live[t]
        tool.check_backup(step(tool, "backup2", tool.backup(data, "second"), data), "incremental")
        res.add(mname("size", t), disk_usage(tool.repo))
        res.add(mname("cache", t), disk_usage(tool.cache))
    for t in order:
        tool = live[t]
        out = wd / f"r{r}-{t}-restored"
        out.mkdir()
        step(tool, "restore", tool.restore(out), tool.repo)
        check_restore(out, data, expected, f"round {r + 1} {t} restore")
        shutil.rmtree(out)
    for t in order:
        tool = live[t]
        step(tool, "verify", tool.verify(), tool.repo)
        res.add(mname("rss", t), max(rss[t]))
        if not args.keep:
            shutil.rmtree(tool.base, ignore_errors=True)
    return gen_s, stats


def main() -> None:
    p = parser(__doc__ or NAME)
    p.add_argument("--size", type=parse_size, default=None, help="dataset bytes (default 1G)")
    p.add_argument("--files", type=int, default=None, help="dataset files (default 59000)")
    p.add_argument("--seed", type=int, default=1, help="dataset seed (default 1)")
    p.add_argument(
        "--only", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS)
    )
    p.add_argument(
        "--strongroom-passphrase",
        action="store_true",
        help="unlock strongroom with STRONGROOM_PASSPHRASE (Argon2id on every command, like "
        "restic's scrypt and borg's PBKDF2) instead of a key file",
    )
    p.add_argument(
        "--cold",
        action="store_true",
        help="drop the page cache before every command (needs root) instead of reading "
        "the command's input once beforehand",
    )
    args = p.parse_args()
    rounds = check_rounds(args)
    args.size = args.size or (32 * MIB if args.quick else 1 << 30)
    args.files = args.files or (2000 if args.quick else 59_000)
    tools = [t for t in TOOLS if t in args.only.split(",")]
    unknown = set(args.only.split(",")) - set(TOOLS)
    if unknown or not tools:
        raise SystemExit(f"--only: choose from {', '.join(TOOLS)} (got {args.only!r})")
    versions = preflight(tools)
    spawner = Spawner()  # before this process grows
    res = BackupResults(args, tools)
    plan = plan_dataset(args.size, args.files, args.seed)
    res.info.update(
        {
            "git commit": git_commit(),
            "loadavg at start": [round(x, 2) for x in os.getloadavg()],
            "versions": versions,
            "dataset": f"{fmt_bytes(args.size)} in {args.files:,} files, seed {args.seed}",
            **plan.stats,
            "text-like zstd-3 ratio (1 MiB pieces)": round(text_ratio(args.seed), 2),
            "rounds": rounds,
            "order": "rotates every round: " + ", ".join(tools),
            "page cache": "cold (dropped before every command)" if args.cold else "warm",
        }
    )
    gen: list[float] = []
    try:
        with workdir(args, NAME) as wd:
            res.info["work directory"] = str(wd)
            try:
                for r in range(rounds):
                    gen_s, stats = one_round(r, wd, tools, plan, args, res, spawner)
                    gen.append(gen_s)
                    res.info["mutation"] = stats
            except BaseException:
                keep = OUT_DIR / f"{NAME}-logs"
                if (wd / "logs").is_dir():
                    shutil.rmtree(keep, ignore_errors=True)
                    shutil.copytree(wd / "logs", keep)
                    log(f"failed; the commands' output is in {keep}")
                raise
    finally:
        spawner.close()
    res.info["generation s (per round)"] = [round(g, 2) for g in gen]
    res.info["loadavg at end"] = [round(x, 2) for x in os.getloadavg()]
    res.notes += [
        "times are wall seconds of the child process (start-up and key derivation included); "
        "peak RSS in MB (10^6 bytes) from os.wait4 of that child; medians [min..max] of rounds",
        (
            "cold page cache: /proc/sys/vm/drop_caches before every command"
            if args.cold
            else "warm page cache: before every command, the files it reads (dataset or "
            "repository) are read once outside the timing (borg evicts what it reads); "
            "os.sync() before every command"
        ),
        "repository size = bytes allocated on disk (du) after the incremental backup; client "
        "caches (restic's RESTIC_CACHE_DIR, borg's BORG_BASE_DIR) are not in it and shown "
        "apart; strongroom's local state (VAULT/state: catalog, clock) is in it and shown "
        "again on the cache row",
        "restic: repository format 2 with --compression auto (zstd); borg: --compression "
        "zstd,3 (its default is lz4), -e repokey; ratios are strongroom / restic",
        "strongroom unlocks with "
        + (
            "STRONGROOM_PASSPHRASE (Argon2id per command)"
            if args.strongroom_passphrase
            else "a key file (no KDF); restic (scrypt) and borg (PBKDF2) derive their key "
            "from the passphrase on every command"
        ),
        "peak RSS ratio: the largest peak over strongroom's commands / over restic's; "
        "commands are started from a small helper process (a child's ru_maxrss includes "
        "the peak of the process that forked it), so ~4 MB is the floor",
    ]
    res.report(
        f"{NAME}: backup, incremental, restore, verify of {fmt_bytes(args.size)} in "
        f"{args.files:,} files: {', '.join(tools)}"
    )


if __name__ == "__main__":
    main()
