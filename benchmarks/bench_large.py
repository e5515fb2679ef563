"""Large content: one big file of mixed content ingested with the CLI.

The input (``--size``, default 1 GiB; ``--quick`` 64 MiB) alternates blocks of 2-6 MiB of
text-like content (pseudo-words with a Zipf distribution; zstd shrinks it ~3x) and
random bytes (incompressible), half of each. ``strongroom ingest FILE`` runs in a child
process on a fresh vault per run; the child alone is measured with ``os.wait4``: wall
time (MB/s of input, including interpreter start-up), peak RSS, and CPU utilisation
((user + sys) / wall: 2.0 means both cores busy all the time).

The same is done at 1/4 of the size, to show that peak RSS does not grow with the input.

Baseline, in a child process too: the bare work any design has to do on the same file —
read it in 1 MiB pieces, SHA-256 of the whole, then per piece zstd (at the pipeline's
level) + AES-256-GCM on a 2-thread pool (like the pipeline's), append to one output
file, fsync at the end.

Targets: >= 150 MB/s, peak RSS < 300 MB at both sizes.

    .venv/bin/python benchmarks/bench_large.py [--quick] [--size 1G]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from _common import (
    MIB,
    STRONGROOM,
    ChildRun,
    Results,
    Target,
    check_rounds,
    cli,
    create_vault,
    fmt_bytes,
    log,
    make_key,
    parse_size,
    parser,
    run_child,
    text,
    vocabulary,
    workdir,
)

NAME = "bench_large"
POOL_SIZE = 8 * MIB
SLICE_MIN, SLICE_MAX = 16 << 10, 64 << 10


def _text_pool(rng: random.Random) -> bytes:
    words, cum = vocabulary()
    parts: list[str] = []
    n = 0
    while n < POOL_SIZE:
        line = text(rng, words, cum, rng.randint(6, 24))
        line = line[0].upper() + line[1:] + ".\n"
        parts.append(line)
        n += len(line)
    return "".join(parts).encode()[:POOL_SIZE]


def mixed_blocks(size: int, seed: int = 1) -> Iterator[bytes]:
    """Blocks totalling ``size`` bytes: text-like and random, alternating, 2-6 MiB each.

    Text blocks are made of 16-64 KiB slices taken at random offsets of an 8 MiB pool of
    generated prose, so no two content-defined chunks are equal (no accidental dedup)
    while the text still compresses like prose.
    """
    rng = random.Random(seed)
    pool = _text_pool(rng)
    done = 0
    compressible = True
    while done < size:
        n = min(size - done, rng.randint(2 * MIB, 6 * MIB))
        if compressible:
            buf = bytearray()
            while len(buf) < n:
                k = rng.randint(SLICE_MIN, SLICE_MAX)
                at = rng.randrange(0, POOL_SIZE - k)
                buf += pool[at : at + k]
            block = bytes(buf[:n])
        else:
            block = rng.randbytes(n)
        yield block
        done += n
        compressible = not compressible


def write_mixed(path: Path, size: int, seed: int = 1) -> Path:
    """Write ``size`` bytes of mixed content to ``path`` (see :func:`mixed_blocks`)."""
    with path.open("wb") as f:
        for block in mixed_blocks(size, seed):
            f.write(block)
    return path


# --- baseline child -------------------------------------------------------------------------


def baseline_child(src: Path, dst: Path) -> None:
    """The bare work: read, hash, compress, encrypt on 2 threads, append, fsync."""
    import zstandard
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from strongroom.vault.packs import ZSTD_LEVEL  # the baseline compresses like ours

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    local: dict[int, zstandard.ZstdCompressor] = {}

    def seal(piece: bytes) -> bytes:
        import threading

        zc = local.setdefault(threading.get_ident(), zstandard.ZstdCompressor(level=ZSTD_LEVEL))
        packed = zc.compress(piece)
        body = packed if len(packed) < len(piece) else piece
        nonce = os.urandom(12)
        return nonce + aead.encrypt(nonce, body, hashlib.sha256(piece).digest())

    whole = hashlib.sha256()
    inflight: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(max_workers=2) as pool, src.open("rb") as f, dst.open("wb") as out:
        while piece := f.read(MIB):
            whole.update(piece)
            inflight.append(pool.submit(seal, piece))
            while len(inflight) > 6:
                out.write(inflight.popleft().result())
        while inflight:
            out.write(inflight.popleft().result())
        out.flush()
        os.fsync(out.fileno())
    print(whole.hexdigest())


# --- runs -----------------------------------------------------------------------------------


def ingest_once(wd: Path, key: Path, src: Path, label: str) -> ChildRun:
    vault = wd / f"vault-{label}"
    create_vault(vault, key)
    try:
        run = run_child(cli(vault, key, "ingest", "--class", "file", str(src)), wd / "logs", label)
        if not run.stdout.read_text().strip():
            raise RuntimeError(f"{label}: ingest acknowledged nothing")
        return run
    finally:
        shutil.rmtree(vault, ignore_errors=True)


def baseline_once(wd: Path, src: Path, label: str) -> ChildRun:
    dst = wd / f"baseline-{label}.bin"
    try:
        return run_child(
            [sys.executable, str(Path(__file__).resolve()), "--baseline-child", str(src), str(dst)],
            wd / "logs",
            label,
        )
    finally:
        dst.unlink(missing_ok=True)


def main() -> None:
    p = parser(__doc__ or NAME)
    p.add_argument("--size", type=parse_size, default=None, help="input size (default 1G)")
    p.add_argument("--baseline-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.baseline_child:
        baseline_child(*args.baseline_child)
        return
    rounds = check_rounds(args)
    size: int = args.size or (64 * MIB if args.quick else 1 << 30)
    quarter = size // 4
    sizes = {"full": size, "quarter": quarter}
    res = Results(NAME, args)
    res.info.update(
        {
            "size": fmt_bytes(size),
            "quarter size": fmt_bytes(quarter),
            "input": "mixed, 50% text-like / 50% random in 2-6 MiB blocks",
            "rounds": rounds,
        }
    )
    for tag in sizes:
        res.metric(
            f"baseline MB/s ({tag})",
            "MB/s",
            note="read+sha256+zstd3+AES-GCM on 2 threads+append+fsync",
        )
        res.metric(
            f"ingest MB/s ({tag})",
            "MB/s",
            baseline=f"baseline MB/s ({tag})",
            target=Target(">=", 150),
        )
    for tag in sizes:
        res.metric(f"ingest peak RSS ({tag})", "MB", target=Target("<=", 300))
    res.metric("RSS quarter->full", "x", note="peak RSS at full size / at quarter size")
    for tag in sizes:
        res.metric(
            f"ingest CPU cores ({tag})",
            "cores",
            baseline=f"baseline CPU cores ({tag})",
            note="(user+sys)/wall; 2.0 = both cores busy",
        )
        res.metric(f"baseline CPU cores ({tag})", "cores")
        res.metric(f"baseline peak RSS ({tag})", "MB")
    res.metric("CLI start-up (--help)", "s", note="interpreter + imports, part of every run")
    with workdir(args, NAME) as wd:
        key = make_key(wd / "key")
        srcs: dict[str, Path] = {}
        for tag, n in sizes.items():
            log(f"generating {fmt_bytes(n)} of mixed content ({tag})")
            srcs[tag] = write_mixed(wd / f"input-{tag}.bin", n, seed=1 if tag == "full" else 2)
        log("warm-up: one untimed ingest of the quarter file")
        ingest_once(wd, key, srcs["quarter"], "warmup")
        for r in range(rounds):
            res.add(
                "CLI start-up (--help)",
                run_child([str(STRONGROOM), "--help"], wd / "logs", f"help-{r}").wall,
            )
            order = ["ingest", "baseline"] if r % 2 == 0 else ["baseline", "ingest"]
            for tag, n in sizes.items():
                for which in order:
                    label = f"{which}-{tag}-{r}"
                    if which == "ingest":
                        run = ingest_once(wd, key, srcs[tag], label)
                    else:
                        run = baseline_once(wd, srcs[tag], label)
                    mbs = n / 1e6 / run.wall
                    res.add(f"{which} MB/s ({tag})", mbs)
                    res.add(f"{which} peak RSS ({tag})", run.max_rss_mb)
                    res.add(f"{which} CPU cores ({tag})", run.cores)
                    log(
                        f"round {r + 1}/{rounds} {label}: {run.wall:.2f} s, {mbs:.1f} MB/s, "
                        f"RSS {run.max_rss_mb:.0f} MB, {run.cores:.2f} cores"
                    )
            m = res.metrics
            res.add(
                "RSS quarter->full",
                m["ingest peak RSS (full)"].samples[-1]
                / m["ingest peak RSS (quarter)"].samples[-1],
            )
    res.notes.append(
        "MB/s = input bytes (10^6) / child wall time, interpreter start-up "
        "included; RSS in MB (10^6 bytes) from os.wait4 of that child only"
    )
    res.report(f"{NAME}: CLI ingest of {fmt_bytes(size)} and {fmt_bytes(quarter)} mixed content")


if __name__ == "__main__":
    main()
