"""Backups into a vault on S3 Object Lock (Ceph RGW and SeaweedFS), and restore from it
(issue 4: "backup into a vault on Ceph RGW and restore from it")."""

from __future__ import annotations

import json
import os
from pathlib import Path

from strongroom.crypto import new_key_file_text
from tests.backuptree import describe
from tests.helpers import failed_checks, verify_report
from tests.s3fixtures import S3Target, unique_prefix
from tests.s3servers import S3Server
from tests.test_s3_writeonly import _bucket, _day, _user, refused
from tests.test_vault_s3 import S3Cli
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


def test_write_only_key_backs_up_and_cannot_destroy_a_snapshot(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """Issue 4 item 5; W-02, W-03, W-04, W-06, W-08, W-18: a key that can only write
    (docs/backup-credentials.md, ``store.s3policy.backup_writer_policy``) is enough to init
    a vault and back up. Used by an attacker on the client, the same key cannot delete a
    version, make a delete marker, shorten a lock, clear a hold or change the bucket; what
    it *can* do — put a new version over a pack — changes nothing that is read: the
    snapshot restores byte-exact, and verify names the planted version."""
    user = _user(s3_server)
    wo = _bucket(s3_server, user)
    prefix = unique_prefix()
    url = f"s3://{wo.bucket}/{prefix}?endpoint={s3_server.endpoint}&region={s3_server.region}"
    key = tmp_path / "vault.key"
    key.write_text(new_key_file_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}
    env |= {"AWS_ACCESS_KEY_ID": user.access, "AWS_SECRET_ACCESS_KEY": user.secret,
            "AWS_DEFAULT_REGION": s3_server.region}  # fmt: skip
    c = S3Cli(url, tmp_path / "state", key, env)
    c("init")
    src = tmp_path / "data"
    src.mkdir()
    for i in range(30):
        (src / f"f{i}.txt").write_text(f"trade confirmation {i}\n" * 100)
    (src / "big.bin").write_bytes(os.urandom(3 << 20))
    tree = describe(src)
    snap = json.loads(c("backup", src, "--json").stdout)["snapshot"]

    attacker = wo.writer
    objects = attacker.list_object_versions(Bucket=wo.bucket, Prefix=prefix + "/")["Versions"]
    packs = [o for o in objects if "/packs/" in o["Key"]]
    assert packs and len(objects) > len(packs)  # packs, ledger objects, keys, vault.json
    for o in objects:
        refused(attacker.delete_object, Bucket=wo.bucket, Key=o["Key"], VersionId=o["VersionId"])
        refused(attacker.delete_object, Bucket=wo.bucket, Key=o["Key"])
        refused(
            attacker.put_object_retention, Bucket=wo.bucket, Key=o["Key"],
            VersionId=o["VersionId"], BypassGovernanceRetention=True,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": _day(1)},
        )  # fmt: skip
        refused(
            attacker.put_object_legal_hold, Bucket=wo.bucket, Key=o["Key"],
            VersionId=o["VersionId"], LegalHold={"Status": "OFF"},
        )  # fmt: skip
    refused(
        attacker.put_bucket_lifecycle_configuration, Bucket=wo.bucket,
        LifecycleConfiguration={"Rules": [{"ID": "x", "Status": "Enabled",
                                           "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]},
    )  # fmt: skip
    refused(attacker.delete_bucket_policy, Bucket=wo.bucket)
    # what the key may do: write a new version over a pack (it cannot replace the original)
    attacker.put_object(Bucket=wo.bucket, Key=packs[0]["Key"], Body=b"ransomware was here")
    # and the client-side tool refuses nothing less: dispose cannot delete a thing either
    assert c("dispose", "--json", check=False).returncode in (0, 5)

    target = tmp_path / "restored"
    c("restore", snap, "--target", target)
    assert describe(os.fsencode(target) + os.fsencode(src)) == tree
    rep = verify_report(c)
    bad = failed_checks(rep)
    assert set(bad) == {"versions"}, [  # the planted version, named; the snapshot intact
        (ch["name"], ch["problems"]) for ch in rep["checks"] if not ch["ok"]
    ]
    assert packs[0]["Key"].split(prefix + "/", 1)[1] in json.dumps(rep)
