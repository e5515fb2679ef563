"""Verify: ``strongroom verify`` against ``sha256sum`` over the same stored bytes.

Builds a vault holding ~``--size`` (default 1 GiB; ``--quick`` 64 MiB) of mixed content
(bench_large's generator; ingested with the CLI as files of <= 128 MiB each), then, in the
same run and with a warm page cache for both (each runs once untimed first), alternates:

- ``strongroom verify --json`` (CLI, child process; wall time including start-up): it
  reads and hashes every pack, authenticates and decompresses every blob, re-derives every
  chunk id, re-hashes the whole ledger and checks every checkpoint, retention and catalog;
- ``sha256sum`` over every file under ``store/objects/packs/`` (the stored pack bytes),
  output to /dev/null: the cost of merely reading and hashing the same bytes once.

For reference only (no target), ``openssl dgst -sha256`` over the same files, when
``openssl`` is installed: coreutils' ``sha256sum`` does not use the CPU's SHA extensions,
OpenSSL (and so Python's hashlib) does, and is several times faster on such CPUs.

MB/s are of stored pack bytes (after compression and encryption). Target: verify >= 50%
of sha256sum.

    .venv/bin/python benchmarks/bench_verify.py [--quick] [--size 1G]
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _common import (
    MIB,
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
    tree_bytes,
    workdir,
)
from bench_large import write_mixed

NAME = "bench_verify"
FILE_MAX = 128 * MIB


def build(wd: Path, key: Path, size: int) -> tuple[Path, ChildRun]:
    """A vault holding ``size`` bytes of mixed content, ingested with the CLI."""
    vault = wd / "vault"
    create_vault(vault, key)
    inputs = wd / "inputs"
    inputs.mkdir()
    files: list[str] = []
    done, k = 0, 0
    while done < size:
        n = min(FILE_MAX, size - done)
        files.append(str(write_mixed(inputs / f"part-{k:03d}.bin", n, seed=100 + k)))
        done, k = done + n, k + 1
    log(f"ingesting {len(files)} file(s), {fmt_bytes(size)}")
    run = run_child(cli(vault, key, "ingest", *files), wd / "logs", "build")
    shutil.rmtree(inputs)
    return vault, run


def verify_once(wd: Path, vault: Path, key: Path, label: str) -> tuple[ChildRun, dict[str, object]]:
    run = run_child(cli(vault, key, "verify", "--json"), wd / "logs", label)
    report = json.loads(run.stdout.read_text())
    if not report.get("ok"):
        raise RuntimeError(f"{label}: verify failed: {json.dumps(report)[:2000]}")
    stats: dict[str, object] = report["stats"]
    return run, stats


def main() -> None:
    p = parser(__doc__ or NAME)
    p.add_argument("--size", type=parse_size, default=None, help="content to store (default 1G)")
    args = p.parse_args()
    rounds = check_rounds(args)
    size: int = args.size or (64 * MIB if args.quick else 1 << 30)
    res = Results(NAME, args)
    sha = res.metric("sha256sum MB/s", "MB/s", note="sha256sum over every pack file")
    res.metric(
        "verify MB/s (CLI wall)",
        "MB/s",
        baseline=sha.name,
        target=Target(">=", 0.5, "ratio"),
        note="stored bytes / wall time of `strongroom verify`",
    )
    res.metric(
        "verify MB/s (reported)",
        "MB/s",
        baseline=sha.name,
        note="the report's own mb_per_s: verify() only, no start-up/unlock",
    )
    res.metric("openssl sha256 MB/s", "MB/s", note="reference: SHA-NI accelerated hashing")
    res.metric(
        "verify MB/s vs openssl",
        "MB/s",
        baseline="openssl sha256 MB/s",
        note="same verify figure, compared with the openssl reference",
    )
    res.metric("verify CPU cores", "cores", note="(user+sys)/wall of the verify child")
    res.metric("verify peak RSS", "MB")
    res.metric("sha256sum s", "s")
    res.metric("verify s (CLI wall)", "s", baseline="sha256sum s")
    with workdir(args, NAME) as wd:
        key = make_key(wd / "key")
        vault, built = build(wd, key, size)
        stored, packs = tree_bytes(vault / "store" / "objects" / "packs")
        res.info.update(
            {
                "content": fmt_bytes(size),
                "stored pack bytes": f"{fmt_bytes(stored)} in {len(packs)} pack file(s)",
                "build (CLI ingest)": f"{built.wall:.1f} s, {size / 1e6 / built.wall:.1f} MB/s",
                "rounds": rounds,
            }
        )
        sha_argv = [shutil.which("sha256sum") or "sha256sum", *map(str, packs)]
        openssl = shutil.which("openssl")
        ossl_argv = [openssl, "dgst", "-sha256", *map(str, packs)] if openssl else []
        log("warm-up: one untimed run of each")
        verify_once(wd, vault, key, "verify-warmup")
        run_child(sha_argv, wd / "logs", "sha-warmup")
        for r in range(rounds):
            order = ["verify", "sha"] if r % 2 == 0 else ["sha", "verify"]
            if ossl_argv:
                order.append("openssl")
            for which in order:
                if which == "verify":
                    run, stats = verify_once(wd, vault, key, f"verify-{r}")
                    if stats.get("object_bytes") != stored:
                        raise RuntimeError(
                            f"verify checked {stats.get('object_bytes')} bytes, "
                            f"the packs hold {stored}"
                        )
                    res.add("verify MB/s (CLI wall)", stored / 1e6 / run.wall)
                    res.add("verify MB/s vs openssl", stored / 1e6 / run.wall)
                    res.add("verify MB/s (reported)", float(str(stats["mb_per_s"])))
                    res.add("verify CPU cores", run.cores)
                    res.add("verify peak RSS", run.max_rss_mb)
                    res.add("verify s (CLI wall)", run.wall)
                elif which == "openssl":
                    run = run_child(ossl_argv, wd / "logs", f"openssl-{r}")
                    res.add("openssl sha256 MB/s", stored / 1e6 / run.wall)
                else:
                    run = run_child(sha_argv, wd / "logs", f"sha-{r}")
                    res.add(sha.name, stored / 1e6 / run.wall)
                    res.add("sha256sum s", run.wall)
                log(
                    f"round {r + 1}/{rounds} {which}: {run.wall:.2f} s, "
                    f"{stored / 1e6 / run.wall:.1f} MB/s"
                )
    res.notes.append("MB/s are stored pack bytes (10^6) per second; both warm-cache")
    res.report(f"{NAME}: verify vs sha256sum over {fmt_bytes(stored)} of stored packs")


if __name__ == "__main__":
    main()
