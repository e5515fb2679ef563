"""Small records: N chat-sized 1 KiB JSON records through the full ingest pipeline,
against a bare baseline doing the minimum work in the same process and run.

Pipeline: ``Appender`` (default batch) on a fresh local vault per round, each record its
own ``Item``; timed from the first ``add`` until the appender has exited (every record
acknowledged, i.e. durable: packs stored, ledger entries and a signed checkpoint written,
catalog indexed).

Baseline (same records, same batch size as the pipeline's default): per record SHA-256,
zstd level 3, AES-256-GCM (random nonce) and an append to one file; flush + fsync at the
end of each batch; the record texts inserted into an SQLite (WAL, synchronous=NORMAL like
the catalog) FTS5 table, one transaction per batch.

The two alternate within each round (and swap order every round). Target: pipeline
records/s >= 50% of the baseline's.

    .venv/bin/python benchmarks/bench_small.py [--quick] [--records N] [--profile]
"""

from __future__ import annotations

import cProfile
import hashlib
import inspect
import io
import json
import os
import pstats
import random
import shutil
import sqlite3
import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from _common import (
    Results,
    Target,
    check_rounds,
    log,
    make_key,
    parser,
    text,
    vocabulary,
    workdir,
)
from strongroom.vault.ingest import Appender, AppendResult, Item
from strongroom.vault.packs import ZSTD_LEVEL  # the baseline compresses like the pipeline
from strongroom.vault.vault import Options, Secret, Vault

NAME = "bench_small"
RECORD_SIZE = 1024
DEFAULT_BATCH: int = inspect.signature(Appender).parameters["batch_records"].default


def make_records(n: int, seed: int = 11, size: int = RECORD_SIZE) -> list[bytes]:
    """``n`` distinct chat messages as JSON, each exactly ``size`` bytes."""
    rng = random.Random(seed)
    words, cum = vocabulary()
    users = [f"{rng.choice(words)}.{rng.choice(words)}@example.com" for _ in range(200)]
    channels = [f"#{rng.choice(words)}-{rng.choice(words)}" for _ in range(30)]
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        msg = {
            "id": f"msg-{seed}-{i:08d}",
            "ts": (t0 + timedelta(seconds=i * 7)).isoformat(),
            "user": rng.choice(users),
            "channel": rng.choice(channels),
            "text": "",
        }
        room = size - len(json.dumps(msg, separators=(",", ":")))
        body = text(rng, words, cum, room // 4)
        while len(body) < room:
            body += " " + text(rng, words, cum, 16)
        msg["text"] = body[:room].rstrip().ljust(room, ".")
        data = json.dumps(msg, separators=(",", ":")).encode()
        assert len(data) == size, len(data)
        out.append(data)
    return out


def run_pipeline(records: list[bytes], d: Path) -> float:
    """Seconds to append and acknowledge every record on a fresh vault."""
    d.mkdir(parents=True)
    key = make_key(d / "key")
    vault = Vault.create(
        str(d / "vault"), Secret(key_file=key), Options(actor="user:bench", kdf_strength="test")
    )
    acked = 0

    def on_ack(r: AppendResult) -> None:
        nonlocal acked
        acked += 1

    try:
        t0 = time.perf_counter()
        with Appender(vault, on_ack=on_ack) as ap:
            for i, data in enumerate(records):
                ap.add(
                    Item.from_bytes(
                        data,
                        record_class="chat",
                        source="bench",
                        source_id=f"m{i}",
                        filename=f"m{i}.json",
                    )
                )
        elapsed = time.perf_counter() - t0
    finally:
        vault.close()
    if acked != len(records):
        raise RuntimeError(f"pipeline acknowledged {acked} of {len(records)} records")
    shutil.rmtree(d)
    return elapsed


def run_baseline(records: list[bytes], d: Path, batch: int) -> float:
    """Seconds for the bare hash/compress/encrypt/append/fsync + FTS5 work."""
    d.mkdir(parents=True)
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    zc = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    db = sqlite3.connect(d / "fts.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE VIRTUAL TABLE fts USING fts5(body, tokenize='unicode61 remove_diacritics 2')"
    )
    frame = struct.Struct(">I32s12s")
    try:
        t0 = time.perf_counter()
        with (d / "data.bin").open("wb") as f:
            for start in range(0, len(records), batch):
                rows = []
                for data in records[start : start + batch]:
                    digest = hashlib.sha256(data).digest()
                    nonce = os.urandom(12)
                    sealed = aead.encrypt(nonce, zc.compress(data), digest)
                    f.write(frame.pack(len(sealed), digest, nonce))
                    f.write(sealed)
                    rows.append((data.decode(),))
                f.flush()
                os.fsync(f.fileno())
                db.execute("BEGIN")
                db.executemany("INSERT INTO fts(body) VALUES(?)", rows)
                db.execute("COMMIT")
        elapsed = time.perf_counter() - t0
    finally:
        db.close()
    shutil.rmtree(d)
    return elapsed


def main() -> None:
    p = parser(__doc__ or NAME)
    p.add_argument("--records", type=int, default=None, help="records per run (default 20000)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also run the pipeline once under cProfile and print the top lines",
    )
    args = p.parse_args()
    rounds = check_rounds(args)
    n = args.records or (2000 if args.quick else 20000)
    res = Results(NAME, args)
    res.info.update(
        {"records": n, "record_size": RECORD_SIZE, "batch_records": DEFAULT_BATCH, "rounds": rounds}
    )
    base = res.metric(
        "baseline records/s",
        "rec/s",
        note="sha256+zstd3+AES-GCM+append, fsync per batch, FTS5 per batch",
    )
    pipe = res.metric(
        "pipeline records/s",
        "rec/s",
        baseline=base.name,
        target=Target(">=", 0.5, "ratio"),
        note="Appender on a fresh vault, until every record is acknowledged",
    )
    res.metric("baseline MB/s", "MB/s")
    res.metric("pipeline MB/s", "MB/s", baseline="baseline MB/s")
    log(f"generating {n} records of {RECORD_SIZE} bytes")
    records = make_records(n)
    mb = n * RECORD_SIZE / 1e6
    with workdir(args, NAME) as wd:
        for r in range(rounds):
            order = ("pipeline", "baseline") if r % 2 == 0 else ("baseline", "pipeline")
            for which in order:
                d = wd / f"r{r}-{which}"
                if which == "pipeline":
                    secs = run_pipeline(records, d)
                    res.add(pipe.name, n / secs)
                    res.add("pipeline MB/s", mb / secs)
                else:
                    secs = run_baseline(records, d, DEFAULT_BATCH)
                    res.add(base.name, n / secs)
                    res.add("baseline MB/s", mb / secs)
                log(f"round {r + 1}/{rounds} {which}: {secs:.2f} s, {n / secs:,.0f} records/s")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            run_pipeline(records, wd / "profile")
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
            print(buf.getvalue())
    res.report(f"{NAME}: {n} x {RECORD_SIZE} B chat records, full pipeline vs bare baseline")


if __name__ == "__main__":
    main()
