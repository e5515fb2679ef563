"""Inclusion proofs on a big ledger: build it through the vault, then produce and verify.

Build: ``--entries`` (default 1,000,000; ``--quick`` 100,000) ACCESS entries appended with
``vault.append_entry`` and made durable with ``vault.commit()`` every ``--batch`` (10,000)
entries — the real write path (bundles, hash tiles, a signed checkpoint, catalog
indexing per commit). Reported: total build time and entries/s (median of ``--builds``
independent builds, default 3), and commit throughput early vs late in the build, to
show whether appending slows down as the ledger grows.

Proofs: the vault is closed and reopened (cold ledger caches), then for 1,000 random
leaves per round (fresh reopen and fresh leaves every round):

- produce: ``vault.ledger.inclusion_proof(i, size)`` (reads hash tiles from the store);
- verify: ``merkle.verify_inclusion(leaf_hash(entry_i), i, size, proof, root)`` with the
  root of the signed checkpoint ``read_checkpoint(size)``.

Per round the median and p99 are taken; the table shows the median over rounds.
Baselines: produce — ``merkle.inclusion_proof`` over an in-memory ``MemoryHashSource`` of
all leaf hashes (no tiles, no store); verify — a bare RFC 9162 root-from-path loop
without any of the library's input checks.

Targets: produce < 10 ms, verify < 1 ms.

    .venv/bin/python benchmarks/bench_proof.py [--quick] [--entries N] [--builds K]
"""

from __future__ import annotations

import hashlib
import random
import shutil
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from _common import (
    Results,
    Target,
    check_rounds,
    log,
    make_key,
    parser,
    percentile,
    workdir,
)
from strongroom.core import merkle
from strongroom.core.entries import EntryType
from strongroom.vault.vault import Options, Secret, Vault

NAME = "bench_proof"
LEAVES = 1000


def build(vault_dir: Path, key: Path, n: int, batch: int) -> tuple[float, list[float]]:
    """Append ``n`` entries, committing every ``batch``; (seconds, per-batch entries/s)."""
    opts = Options(actor="user:bench", kdf_strength="test")
    vault = Vault.create(str(vault_dir), Secret(key_file=key), opts)
    rates: list[float] = []
    try:
        t0 = time.perf_counter()
        last_log = t0
        for start in range(0, n, batch):
            t1 = time.perf_counter()
            end = min(n, start + batch)
            for i in range(start, end):
                vault.append_entry(EntryType.ACCESS, {"action": "bench", "n": i})
            vault.commit()
            now = time.perf_counter()
            rates.append((end - start) / (now - t1))
            if now - last_log > 15:
                last_log = now
                log(
                    f"  built {end:,} entries, {end / (now - t0):,.0f}/s overall, "
                    f"last batch {rates[-1]:,.0f}/s"
                )
        elapsed = time.perf_counter() - t0
    finally:
        vault.close()
    return elapsed, rates


def bare_root(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2, no checks: the floor for verification cost."""
    fn, sn = index, size - 1
    r = leaf
    sha = hashlib.sha256
    for p in proof:
        if fn & 1 or fn == sn:
            r = sha(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = sha(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r


def main() -> None:
    p = parser(__doc__ or NAME)
    p.add_argument("--entries", type=int, default=None, help="ledger size (default 1000000)")
    p.add_argument("--batch", type=int, default=10_000, help="entries per commit")
    p.add_argument("--builds", type=int, default=3, help="independent builds to time (>= 1)")
    args = p.parse_args()
    rounds = check_rounds(args)
    n: int = args.entries or (100_000 if args.quick else 1_000_000)
    res = Results(NAME, args)
    res.info.update(
        {
            "entries": n,
            "commit every": args.batch,
            "leaves per round": LEAVES,
            "rounds": rounds,
            "builds": args.builds,
        }
    )
    res.metric("build s", "s", note="append_entry + commit per batch, fresh vault")
    res.metric("build entries/s", "ent/s")
    res.metric("commit entries/s, first 10%", "ent/s")
    res.metric(
        "commit entries/s, last 10%",
        "ent/s",
        baseline="commit entries/s, first 10%",
        note="ratio < 1 means appending slows down as the ledger grows",
    )
    res.metric("reopen s", "s", note="Vault.open of the built vault")
    res.metric("produce median (in-memory)", "ms", note="merkle.inclusion_proof, MemoryHashSource")
    res.metric(
        "produce median", "ms", baseline="produce median (in-memory)", target=Target("<=", 10)
    )
    res.metric("produce p99", "ms", baseline="produce median (in-memory)", target=Target("<=", 10))
    res.metric("verify median (bare)", "ms", note="bare RFC 9162 loop, no checks")
    res.metric("verify median", "ms", baseline="verify median (bare)", target=Target("<=", 1))
    res.metric("verify p99", "ms", baseline="verify median (bare)", target=Target("<=", 1))
    with workdir(args, NAME) as wd:
        key = make_key(wd / "key")
        secret = Secret(key_file=key)
        vault_dir = wd / "vault"
        for b in range(max(1, args.builds)):
            d = vault_dir if b == 0 else wd / f"vault-build{b}"
            log(f"build {b + 1}/{args.builds}: {n:,} entries, commit every {args.batch:,}")
            secs, rates = build(d, key, n, args.batch)
            tenth = max(1, len(rates) // 10)
            res.add("build s", secs)
            res.add("build entries/s", n / secs)
            res.add("commit entries/s, first 10%", statistics.median(rates[:tenth]))
            res.add("commit entries/s, last 10%", statistics.median(rates[-tenth:]))
            log(f"build {b + 1}: {secs:.1f} s, {n / secs:,.0f} entries/s")
            if b:
                shutil.rmtree(d)
        opts = Options(actor="user:bench", kdf_strength="test")
        rng = random.Random(5)
        mem_src: merkle.MemoryHashSource | None = None
        for r in range(rounds):
            t0 = time.perf_counter()
            vault = Vault.open(str(vault_dir), secret, opts)
            res.add("reopen s", time.perf_counter() - t0)
            try:
                ledger = vault.ledger
                size = ledger.size
                root = ledger.read_checkpoint(size).root
                if mem_src is None:
                    log("loading all leaf hashes for the in-memory baseline")
                    mem_src = merkle.MemoryHashSource(
                        merkle.leaf_hash(e) for _, e in ledger.entries(0, size)
                    )
                    if merkle.root(mem_src, size) != root:
                        raise RuntimeError("in-memory root differs from the checkpoint root")
                leaves = [rng.randrange(size) for _ in range(LEAVES)]
                produce, verify, produce_mem, verify_bare = [], [], [], []
                for i in leaves:
                    t1 = time.perf_counter()
                    proof = ledger.inclusion_proof(i, size)
                    t2 = time.perf_counter()
                    leaf = merkle.leaf_hash(ledger.entry(i))
                    t3 = time.perf_counter()
                    merkle.verify_inclusion(leaf, i, size, proof, root)
                    t4 = time.perf_counter()
                    produce.append((t2 - t1) * 1e3)
                    verify.append((t4 - t3) * 1e3)
                for i in leaves:
                    leaf = merkle.leaf_hash(ledger.entry(i))
                    t1 = time.perf_counter()
                    proof = merkle.inclusion_proof(mem_src, i, size)
                    t2 = time.perf_counter()
                    got = bare_root(leaf, i, size, proof)
                    t3 = time.perf_counter()
                    if got != root:
                        raise RuntimeError(f"bare verification of leaf {i} failed")
                    produce_mem.append((t2 - t1) * 1e3)
                    verify_bare.append((t3 - t2) * 1e3)
            finally:
                vault.close()
            res.add("produce median", statistics.median(produce))
            res.add("produce p99", percentile(produce, 99))
            res.add("verify median", statistics.median(verify))
            res.add("verify p99", percentile(verify, 99))
            res.add("produce median (in-memory)", statistics.median(produce_mem))
            res.add("verify median (bare)", statistics.median(verify_bare))
            log(
                f"round {r + 1}/{rounds}: produce median {statistics.median(produce):.3f} ms "
                f"p99 {percentile(produce, 99):.3f} ms; verify median "
                f"{statistics.median(verify):.4f} ms p99 {percentile(verify, 99):.4f} ms"
            )
    res.notes.append(
        "build figures: median of the builds; proof figures: median over rounds "
        "of each round's median / p99 of 1,000 random leaves"
    )
    res.report(f"{NAME}: {n:,}-entry ledger, inclusion proofs")


if __name__ == "__main__":
    main()
