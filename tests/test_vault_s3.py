"""A whole vault on S3 Object Lock (Ceph RGW and SeaweedFS): the CLI end to end, what
the storage refuses when someone goes around Strongroom, what ``verify`` reports, and
SIGKILL during ingest (issue 3's "must be shown by tests")."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from strongroom.crypto import new_key_file_text
from tests.helpers import failed_checks, ingest_files, verify_report
from tests.helpers.ingest_loop import record_bytes
from tests.s3fixtures import S3Target, unique_prefix

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class S3Cli:
    url: str
    state: Path
    key_file: Path
    env: dict[str, str]

    def __call__(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = [
            sys.executable, "-m", "strongroom", "--vault", self.url,
            "--state-dir", str(self.state), "--key-file", str(self.key_file), *map(str, args),
        ]  # fmt: skip
        p = subprocess.run(cmd, capture_output=True, env=self.env, timeout=300, check=False)
        if check and p.returncode != 0:
            raise AssertionError(
                f"{args} exited {p.returncode}: {p.stderr.decode(errors='replace')}"
            )
        return p


def _cli(s3: S3Target, tmp_path: Path, *init_args: str) -> S3Cli:
    key = tmp_path / "vault.key"
    key.write_text(new_key_file_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    c = S3Cli(s3.url(unique_prefix()), tmp_path / "state", key, env)
    c("init", *init_args)
    return c


def test_cli_round_trip_and_outside_tampering_on_s3(s3: S3Target, tmp_path: Path) -> None:
    """F2-i-B-1/2, W-02, W-03, W-09, W-18: records go in and come back byte-exact from a vault
    on S3; deleting a pack's version or shortening its retention through the S3 API is
    refused by the server; a delete marker and an extra version planted from outside are
    reported by verify (naming the object), and the original is still what is read."""
    c = _cli(s3, tmp_path)
    files = {"a.json": b'{"user":"ann","text":"buy 100"}', "b.bin": os.urandom(300_000)}
    ids = ingest_files(c, tmp_path, files)
    for rid, data in ids.items():
        assert c("get", rid).stdout == data
    assert verify_report(c)["ok"] is True

    client = s3.client()
    prefix = c.url.split("/", 3)[3].split("?")[0] + "/"
    versions = client.list_object_versions(Bucket=s3.bucket, Prefix=prefix + "packs/")
    packs = list(versions["Versions"])
    assert packs, "no pack objects on S3"
    pack = packs[0]
    with pytest.raises(ClientError):  # the storage itself refuses
        client.delete_object(Bucket=s3.bucket, Key=pack["Key"], VersionId=pack["VersionId"])
    with pytest.raises(ClientError):
        client.put_object_retention(
            Bucket=s3.bucket,
            Key=pack["Key"],
            VersionId=pack["VersionId"],
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": pack["LastModified"]},
        )
    assert verify_report(c)["ok"] is True  # nothing changed

    client.delete_object(Bucket=s3.bucket, Key=pack["Key"])  # a delete marker on top
    client.put_object(Bucket=s3.bucket, Key=pack["Key"], Body=b"forged")  # and a new version
    report = verify_report(c)
    assert report["ok"] is False
    name = pack["Key"][len(prefix) :]
    assert failed_checks(report) == {"versions": [name]}
    for rid, data in ids.items():  # the originals are still read
        assert c("get", rid).stdout == data


def test_governance_vault_is_flagged_not_17a4(s3: S3Target, tmp_path: Path) -> None:
    """A GOVERNANCE vault works but verify says it is not 17a-4 grade."""
    c = _cli(s3, tmp_path, "--governance")
    ingest_files(c, tmp_path, {"m.json": b'{"text":"hello"}'})
    report = verify_report(c)
    assert report["ok"] is True
    checks = report["checks"]
    assert isinstance(checks, list)
    notes = " ".join(n for ch in checks for n in ch["notes"])
    assert "not 17a-4 grade" in notes


def test_sigkill_during_ingest_to_s3(s3: S3Target, tmp_path: Path) -> None:
    """SIGKILL at random moments while ingesting into a vault on S3: after each restart
    every acknowledged record reads back byte-exact and verify passes."""
    c = _cli(s3, tmp_path)
    rng = random.Random(33)
    acked: dict[str, tuple[int, int]] = {}  # record -> (seed, n)
    loop = ROOT / "tests" / "helpers" / "ingest_loop.py"
    for round_ in range(6):
        seed = 500 + round_
        child = subprocess.Popen(
            [sys.executable, str(loop), "--state-dir", str(c.state), c.url, str(c.key_file),
             str(seed)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=c.env, cwd=ROOT,
        )  # fmt: skip
        time.sleep(rng.uniform(1.0, 4.0))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=60)
        lines = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
        opened = any(e.get("event") == "opened" for e in lines)
        for e in lines:
            if "record" in e:
                acked[str(e["record"])] = (seed, int(e["n"]))
        assert opened or round_ > 0 or err == b"", err.decode(errors="replace")
    assert acked, "no record was acknowledged in any round"
    sample = list(acked.items())
    random.Random(1).shuffle(sample)
    for rid, (seed, n) in sample[:40]:
        assert c("get", rid).stdout == record_bytes(seed, n), rid
    report = verify_report(c)
    assert report["ok"] is True, failed_checks(report)
