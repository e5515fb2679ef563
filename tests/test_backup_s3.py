"""Backups into a vault on S3 Object Lock (Ceph RGW and SeaweedFS), and restore from it
(issue 4: "backup into a vault on Ceph RGW and restore from it")."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.backuptree import describe
from tests.helpers import failed_checks, verify_report
from tests.s3fixtures import S3Target
from tests.test_vault_s3 import _cli as s3_cli


def test_backup_to_s3_and_restore(s3: S3Target, tmp_path: Path) -> None:
    """W-01, W-09, F2-v: a tree backed up twice into a vault on the S3 server (the second
    run incremental, with a change) restores exactly as each snapshot was taken, and
    every pack the snapshots depend on carries a COMPLIANCE lock on the server at least
    until the snapshot's retain-until."""
    c = s3_cli(s3, tmp_path)
    src = tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    (src / "big.bin").write_bytes(os.urandom(5 << 20))
    for i in range(40):
        (src / "sub" / f"msg{i}.txt").write_text(f"message {i}\n" * 40)
    os.symlink("big.bin", src / "link")
    first_tree = describe(src)
    first = json.loads(c("backup", src, "--json").stdout)
    (src / "sub" / "msg7.txt").write_text("changed\n")
    second_tree = describe(src)
    second = json.loads(c("backup", src, "--json").stdout)
    assert second["unchanged_files"] == 40  # 41 files, one changed

    for snap, tree, where in ((first, first_tree, "r1"), (second, second_tree, "r2")):
        target = tmp_path / where
        c("restore", snap["snapshot"], "--target", target)
        assert describe(os.fsencode(target) + os.fsencode(src)) == tree

    client = s3.client()
    prefix = c.url.split("/", 3)[3].split("?")[0] + "/"
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix + "packs/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert keys
    until = max(first["retain_until"], second["retain_until"])
    for key in keys:
        lock = client.get_object_retention(Bucket=s3.bucket, Key=key)["Retention"]
        assert lock["Mode"] == "COMPLIANCE"
        assert lock["RetainUntilDate"].strftime("%Y-%m-%dT%H:%M:%S") >= until[:19]
    rep = verify_report(c)
    assert rep["ok"] is True, failed_checks(rep)
