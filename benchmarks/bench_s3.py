"""A vault on a real Ceph RADOS Gateway (Object Lock), started by the test harness
(tests/s3servers.py) on 127.0.0.1 for the run.

* **small**: N chat-sized 1 KiB records (bench_small's) appended to a fresh vault on
  RGW with the default batch; the S3 PUTs are counted (boto3 event hook). Target: at
  least 100x fewer PUTs than records (packing). Records/s reported.
* **large**: a mixed compressible/random file (bench_large's) ingested into a fresh
  vault on RGW, against plain boto3 ``put_object`` of the same bytes in 16 MiB
  objects (the pack size), sequentially, in the same run, alternating. Target: the
  vault's MB/s at least 70% of plain boto3's.
* **verify**: ``verify`` of the large vault: MB/s of stored bytes and S3 requests per
  record (and of the small vault: requests per record).

    .venv/bin/python benchmarks/bench_s3.py [--quick] [--rounds N] [--size 256M]
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.s3servers: the same harness the tests use

from tests.s3servers import S3Server, start_ceph, stop, unavailable  # noqa: E402

from _common import MIB, Results, Target, check_rounds, log, make_key, parse_size, parser, workdir  # noqa: E402
from bench_large import mixed_blocks  # noqa: E402
from bench_small import make_records  # noqa: E402
from strongroom.vault.ingest import Appender, Item  # noqa: E402
from strongroom.vault.vault import Options, Secret, Vault  # noqa: E402
from strongroom.vault.verify import verify  # noqa: E402

NAME = "bench_s3"
PIECE = 16 * MIB


def _count_requests(vault: Vault) -> Counter[str]:
    """Count every S3 request the vault's store makes, by operation."""
    counts: Counter[str] = Counter()
    client: Any = vault.store.s3  # type: ignore[attr-defined]

    def hook(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    client.meta.events.register("before-call.s3", hook)
    return counts


def _vault(server: S3Server, d: Path, prefix: str) -> Vault:
    key = make_key(d / f"{prefix}.key")
    url = f"s3://{BUCKET[0]}/{prefix}?endpoint={server.endpoint}&region={server.region}"
    return Vault.create(
        url,
        Secret(key_file=key),
        Options(actor="user:bench", kdf_strength="test", state_dir=d / f"{prefix}-state"),
    )


BUCKET: list[str] = []


def run_small(server: S3Server, d: Path, records: list[bytes], r: int) -> tuple[float, int, float]:
    """(records/s, PUTs, verify requests per record)."""
    vault = _vault(server, d, f"small-{r}")
    counts = _count_requests(vault)
    try:
        counts.clear()
        t0 = time.perf_counter()
        with Appender(vault) as ap:
            for i, data in enumerate(records):
                ap.add(
                    Item.from_bytes(
                        data, record_class="chat", source="bench", source_id=f"m{i}",
                        filename=f"m{i}.json",
                    )
                )  # fmt: skip
        secs = time.perf_counter() - t0
        puts = counts["PutObject"]
        counts.clear()
        report = verify(vault, record=False)
        assert report.ok, [c.problems for c in report.checks if not c.ok]
        per_record = sum(counts.values()) / len(records)
    finally:
        vault.close()
    return len(records) / secs, puts, per_record


def run_large(server: S3Server, d: Path, src: Path, r: int) -> tuple[float, float, float, int]:
    """(ingest MB/s, verify MB/s, verify requests per record, stored bytes)."""
    size = src.stat().st_size
    vault = _vault(server, d, f"large-{r}")
    counts = _count_requests(vault)
    try:
        t0 = time.perf_counter()
        with Appender(vault) as ap:
            ap.add(Item(open=lambda: src.open("rb"), source_id=f"large-{r}", filename=src.name))
        ingest = size / 1e6 / (time.perf_counter() - t0)
        counts.clear()
        t0 = time.perf_counter()
        report = verify(vault, record=False)
        secs = time.perf_counter() - t0
        assert report.ok, [c.problems for c in report.checks if not c.ok]
        stored = int(report.stats["object_bytes"])
        requests = sum(counts.values())
    finally:
        vault.close()
    return ingest, stored / 1e6 / secs, float(requests), stored


def run_boto3(server: S3Server, src: Path, r: int) -> float:
    """MB/s of plain boto3 put_object of the same bytes, 16 MiB per object."""
    import boto3
    from botocore.config import Config

    c = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}),
    )
    size = src.stat().st_size
    t0 = time.perf_counter()
    with src.open("rb") as f:
        i = 0
        while piece := f.read(PIECE):
            c.put_object(Bucket=BUCKET[0], Key=f"plain-{r}/{i:05d}", Body=piece)
            i += 1
    return size / 1e6 / (time.perf_counter() - t0)


def main() -> None:
    p = parser(__doc__ or NAME)
    p.add_argument("--records", type=int, default=None, help="small records (default 20000)")
    p.add_argument("--size", type=parse_size, default=None, help="large file (default 256M)")
    args = p.parse_args()
    rounds = check_rounds(args)
    why = unavailable("ceph")
    if why:
        raise SystemExit(f"Ceph RGW is not available: {why}")
    n = args.records or (2000 if args.quick else 20000)
    size = args.size or ((32 if args.quick else 256) * MIB)
    res = Results(NAME, args)
    res.info.update({"records": n, "large_bytes": size, "rounds": rounds, "server": "ceph"})
    res.metric("small records/s", "rec/s", note="1 KiB records into a vault on RGW")
    res.metric("records per PUT", "x", target=Target(">=", 100, "value"), note="packing")
    plain = res.metric("plain boto3 put_object MB/s", "MB/s", note="16 MiB objects, sequential")
    big = res.metric(
        "large ingest MB/s",
        "MB/s",
        baseline=plain.name,
        target=Target(">=", 0.7, "ratio"),
        note="Appender into a vault on RGW",
    )
    res.metric("verify MB/s (large vault)", "MB/s", note="stored bytes / verify time")
    res.metric("verify requests per record (large vault)", "req/rec")
    res.metric("verify requests per record (small vault)", "req/rec")
    with workdir(args, NAME) as wd:
        server = start_ceph(wd / "ceph")
        try:
            for k, v in {
                "AWS_ACCESS_KEY_ID": server.access_key,
                "AWS_SECRET_ACCESS_KEY": server.secret_key,
            }.items():
                os.environ[k] = v
            import boto3

            s3c = boto3.session.Session().client(
                "s3", endpoint_url=server.endpoint, region_name=server.region
            )
            BUCKET.append(f"bench-{datetime.now(UTC):%H%M%S}")
            s3c.create_bucket(Bucket=BUCKET[0], ObjectLockEnabledForBucket=True)
            log(f"Ceph RGW up at {server.endpoint}; generating data")
            records = make_records(n)
            src = wd / "mixed.bin"
            with src.open("wb") as f:
                written = 0
                for block in mixed_blocks(size):
                    f.write(block[: size - written])
                    written += len(block[: size - written])
                    if written >= size:
                        break
            for r in range(rounds):
                recs_s, puts, per_rec = run_small(server, wd, records, r)
                res.add("small records/s", recs_s)
                res.add("records per PUT", n / max(puts, 1))
                res.add("verify requests per record (small vault)", per_rec)
                log(f"round {r + 1}: small {recs_s:,.0f} rec/s, {puts} PUTs for {n} records")
                order = ("vault", "plain") if r % 2 == 0 else ("plain", "vault")
                for which in order:
                    if which == "plain":
                        mbs = run_boto3(server, src, r)
                        res.add(plain.name, mbs)
                        log(f"round {r + 1}: plain boto3 {mbs:.1f} MB/s")
                    else:
                        ing, vmbs, reqs, _stored = run_large(server, wd, src, r)
                        res.add(big.name, ing)
                        res.add("verify MB/s (large vault)", vmbs)
                        res.add("verify requests per record (large vault)", reqs)
                        log(f"round {r + 1}: vault {ing:.1f} MB/s, verify {vmbs:.1f} MB/s")
        finally:
            stop(server)
    res.report(f"{NAME}: a vault on Ceph RGW (Object Lock) vs plain boto3, same run")


if __name__ == "__main__":
    main()
