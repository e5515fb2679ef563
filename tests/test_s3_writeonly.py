"""The write-only backup credential (strongroom.store.s3policy) on real servers.

A second user, created on the server with its own keys and no rights of its own, gets
its rights from the bucket policy :func:`backup_writer_policy` builds; the owner
(``tests.s3servers.OWNER_UID``) created the Object Lock bucket and installs the policy.
Each test shows what the backup key CAN do (write with a COMPLIANCE lock, read, list,
extend) and what it CANNOT (every refusal asserted with the error code seen), citing the
conformance tests of ../shared/regulatory/STORAGE-ASSESSMENTS.md (W-xx).

Runs once per server (the ``s3_server`` fixture): Ceph RGW 16.2.15 and SeaweedFS 4.48
(which evaluates bucket policies too; its principals are
``arn:aws:iam::000000000000:user/NAME``). Where the two differ the test says so and
asserts each server's behaviour: those are the gaps docs/backup-credentials.md lists.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from strongroom.errors import Refused
from strongroom.store.s3 import S3Store
from strongroom.store.s3policy import backup_writer_policy
from tests.s3servers import OWNER_UID, S3Server, create_user, put_bucket_policy, user_arn

COMPLIANCE, GOVERNANCE = "COMPLIANCE", "GOVERNANCE"


def _client(server: S3Server, access: str, secret: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _day(days: float = 1) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def _plain(doc: Any) -> Any:
    """A policy as a server may hand it back: one-element lists as their element."""
    if isinstance(doc, dict):
        return {k: _plain(v) for k, v in doc.items()}
    if isinstance(doc, list):
        items = [_plain(v) for v in doc]
        return items[0] if len(items) == 1 else items
    return doc


def refused(call: Callable[..., object], /, **kw: Any) -> str:
    """Run ``call(**kw)``, a request that must be refused with HTTP 403; its S3 error code."""
    with pytest.raises(ClientError) as info:
        call(**kw)
    resp = info.value.response
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 403, resp
    return str(resp.get("Error", {}).get("Code", ""))


def multi_delete_refused(client: Any, bucket: str, obj: dict[str, str]) -> str:
    """A DeleteObjects batch of one key that must delete nothing: the error code. Ceph
    RGW refuses the whole request (403); SeaweedFS, like AWS, answers 200 with the key
    in ``Errors``."""
    try:
        r = client.delete_objects(Bucket=bucket, Delete={"Objects": [obj]})
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response
        return str(e.response.get("Error", {}).get("Code", ""))
    assert not r.get("Deleted"), r
    (err,) = r["Errors"]
    return str(err["Code"])


@dataclass(frozen=True)
class User:
    access: str
    secret: str
    arn: str


@dataclass(frozen=True)
class WriteOnly:
    """An Object Lock bucket whose policy makes ``writer`` a backup key."""

    server: S3Server
    bucket: str
    owner: Any  # client with the owner's keys
    writer: Any  # client with the backup key
    policy: dict[str, Any]

    def put(self, key: str, mode: str | None = COMPLIANCE, until: datetime | None = None) -> str:
        """The backup key writes ``key`` (locked unless ``mode`` is None); its version id."""
        kw: dict[str, Any] = {}
        if mode is not None:
            kw = {"ObjectLockMode": mode, "ObjectLockRetainUntilDate": until or _day()}
        r = self.writer.put_object(
            Bucket=self.bucket, Key=key, Body=b"record " + key.encode(), **kw
        )
        return str(r["VersionId"])

    def retention(self, key: str, vid: str) -> tuple[str, datetime]:
        r = self.owner.get_object_retention(Bucket=self.bucket, Key=key, VersionId=vid)
        return r["Retention"]["Mode"], r["Retention"]["RetainUntilDate"]

    def body(self, key: str, vid: str) -> bytes:
        return bytes(
            self.owner.get_object(Bucket=self.bucket, Key=key, VersionId=vid)["Body"].read()
        )


def _user(server: S3Server, *, op_mask: str | None = None) -> User:
    uid = f"backup-{uuid.uuid4().hex[:10]}"
    access, secret = create_user(server, uid, op_mask=op_mask)
    return User(access, secret, user_arn(server, uid))


@pytest.fixture(scope="module")
def backup_user(s3_server: S3Server) -> User:
    """One backup user per server (created once; it owns nothing and is granted nothing)."""
    return _user(s3_server)


def _bucket(
    server: S3Server, user: User, policy: Callable[[str], dict[str, Any]] | None = None
) -> WriteOnly:
    owner = _client(server, server.access_key, server.secret_key)
    bucket = f"wo-{uuid.uuid4().hex[:16]}"
    owner.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    if policy is None:
        doc = backup_writer_policy(bucket, user.arn, admin_arn=user_arn(server, OWNER_UID))
    else:
        doc = policy(bucket)
    put_bucket_policy(server, bucket, doc)
    return WriteOnly(server, bucket, owner, _client(server, user.access, user.secret), doc)


@pytest.fixture
def wo(s3_server: S3Server, backup_user: User) -> WriteOnly:
    """A fresh Object Lock bucket with the backup-writer policy (and the owner as admin)."""
    return _bucket(s3_server, backup_user)


# ------------------------------------------------------------------------ what it CAN do


def test_w05_w12_backup_key_writes_locked_reads_lists_and_extends(wo: WriteOnly) -> None:
    """W-01 / W-05 / W-12: the backup key puts an object with COMPLIANCE retention
    headers, reads it, heads it (lock visible), lists its versions, reads its retention
    and extends it -- also with the governance-bypass header, which S3Store sends when it
    (re)sets a COMPLIANCE lock; the server ignores it for a lengthening."""
    w, b, until = wo.writer, wo.bucket, _day()
    vid = wo.put("pack", COMPLIANCE, until)
    assert w.get_object(Bucket=b, Key="pack", VersionId=vid)["Body"].read() == b"record pack"
    h = w.head_object(Bucket=b, Key="pack", VersionId=vid)
    assert (h["ObjectLockMode"], h["ObjectLockRetainUntilDate"]) == (COMPLIANCE, until)
    versions = w.list_object_versions(Bucket=b, Prefix="pack")["Versions"]
    assert [v["VersionId"] for v in versions] == [vid]
    r = w.get_object_retention(Bucket=b, Key="pack", VersionId=vid)["Retention"]
    assert (r["Mode"], r["RetainUntilDate"]) == (COMPLIANCE, until)
    for days, bypass in ((2, False), (3, True)):
        w.put_object_retention(
            Bucket=b,
            Key="pack",
            VersionId=vid,
            Retention={"Mode": COMPLIANCE, "RetainUntilDate": _day(days)},
            BypassGovernanceRetention=bypass,
        )
        assert wo.retention("pack", vid)[1] > until
    assert (
        w.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]["ObjectLockEnabled"]
        == "Enabled"
    )
    assert w.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"


def test_s3store_runs_on_the_backup_key(wo: WriteOnly) -> None:
    """W-01 / W-05 / W-03: Strongroom's own S3Store opens the bucket, stores, reads back
    the lock, lists and extends with the backup key alone; its delete of an *expired*
    object and its legal hold are refused by the server (Refused), not by our code."""
    url = f"s3://{wo.bucket}/vault?endpoint={wo.server.endpoint}&region={wo.server.region}"
    store = S3Store(url, lambda: datetime.now(UTC), client=wo.writer)
    info = store.put("packs/a", b"records", retain_until=_day())
    assert store.get("packs/a") == b"records" and store.head("packs/a") == info
    assert list(store.list()) == ["packs/a"]
    later = _day(2)
    assert store.extend_retention("packs/a", later).retain_until == later
    store.put("packs/short", b"expires", retain_until=datetime.now(UTC) + timedelta(seconds=1))
    time.sleep(3)
    with pytest.raises(Refused, match="S3 refused deleting"):
        store.delete("packs/short")
    assert store.get("packs/short") == b"expires"
    with pytest.raises(Refused, match="S3 refused setting the legal hold"):
        store.set_legal_hold("packs/a", True)


# ------------------------------------------------------------------------ what it CANNOT


def test_w03_backup_key_cannot_delete_any_version(wo: WriteOnly) -> None:
    """W-03: DeleteObject with a version id (DeleteObjectVersion), alone or in a
    DeleteObjects batch, is refused -- for a locked version and for an unlocked one
    (refused by the policy, not only by the lock). Both stay readable."""
    locked, plain = wo.put("locked"), wo.put("plain", mode=None)
    for key, vid in (("locked", locked), ("plain", plain)):
        assert (
            refused(wo.writer.delete_object, Bucket=wo.bucket, Key=key, VersionId=vid)
            == "AccessDenied"
        )
        assert (
            multi_delete_refused(wo.writer, wo.bucket, {"Key": key, "VersionId": vid})
            == "AccessDenied"
        )
        assert wo.body(key, vid) == b"record " + key.encode()


def test_w18_backup_key_cannot_make_a_delete_marker(wo: WriteOnly) -> None:
    """W-18 / W-02: DeleteObject without a version id (which would only lay a delete
    marker on top) is refused, alone and in a batch: no marker appears and a plain GET
    still finds the object. An overwrite is allowed -- it adds a version and leaves the
    first one's bytes and lock as they were (what S3Store reads is the oldest)."""
    vid = wo.put("pack")
    assert refused(lambda: wo.writer.delete_object(Bucket=wo.bucket, Key="pack")) == "AccessDenied"
    assert multi_delete_refused(wo.writer, wo.bucket, {"Key": "pack"}) == "AccessDenied"
    listing = wo.owner.list_object_versions(Bucket=wo.bucket, Prefix="pack")
    assert not listing.get("DeleteMarkers")
    assert wo.owner.get_object(Bucket=wo.bucket, Key="pack")["Body"].read() == b"record pack"
    wo.writer.put_object(Bucket=wo.bucket, Key="pack", Body=b"forged")
    assert wo.body("pack", vid) == b"record pack"
    assert wo.retention("pack", vid)[0] == COMPLIANCE


def test_w04_backup_key_cannot_shorten_or_lower_compliance(wo: WriteOnly) -> None:
    """W-04 / W-14: a COMPLIANCE retention cannot be shortened (with or without the
    bypass header) nor lowered to GOVERNANCE by the backup key, which does hold
    s3:PutObjectRetention: the server only lets that permission lengthen."""
    until = _day(2)
    vid = wo.put("pack", COMPLIANCE, until)
    for mode, new in ((COMPLIANCE, _day(1)), (GOVERNANCE, _day(3))):
        for bypass in (False, True):
            assert (
                refused(
                    wo.writer.put_object_retention,
                    Bucket=wo.bucket,
                    Key="pack",
                    VersionId=vid,
                    Retention={"Mode": mode, "RetainUntilDate": new},
                    BypassGovernanceRetention=bypass,
                )
                == "AccessDenied"
            )
    assert wo.retention("pack", vid) == (COMPLIANCE, until)


def test_w14_backup_key_cannot_bypass_governance(wo: WriteOnly) -> None:
    """W-14: on a GOVERNANCE object the backup key wrote itself, shortening (with and
    without x-amz-bypass-governance-retention) and deleting with the bypass are refused:
    s3:BypassGovernanceRetention is denied explicitly."""
    until = _day(2)
    vid = wo.put("pack", GOVERNANCE, until)
    for bypass in (False, True):
        assert (
            refused(
                wo.writer.put_object_retention,
                Bucket=wo.bucket,
                Key="pack",
                VersionId=vid,
                Retention={"Mode": GOVERNANCE, "RetainUntilDate": _day(1)},
                BypassGovernanceRetention=bypass,
            )
            == "AccessDenied"
        )
    assert (
        refused(
            lambda: wo.writer.delete_object(
                Bucket=wo.bucket, Key="pack", VersionId=vid, BypassGovernanceRetention=True
            )
        )
        == "AccessDenied"
    )
    assert wo.retention("pack", vid) == (GOVERNANCE, until)


def test_w06_w07_backup_key_cannot_clear_or_set_a_legal_hold(wo: WriteOnly) -> None:
    """W-06 / W-07: a legal hold the owner placed cannot be removed by the backup key
    (PutObjectLegalHold OFF refused); it may read it. Placing one is refused too (one
    action covers both). The hold is still on afterwards."""
    vid, other = wo.put("held"), wo.put("free")
    wo.owner.put_object_legal_hold(
        Bucket=wo.bucket, Key="held", VersionId=vid, LegalHold={"Status": "ON"}
    )
    for key, v, status in (("held", vid, "OFF"), ("free", other, "ON")):
        assert (
            refused(
                wo.writer.put_object_legal_hold,
                Bucket=wo.bucket,
                Key=key,
                VersionId=v,
                LegalHold={"Status": status},
            )
            == "AccessDenied"
        )
    got = wo.writer.get_object_legal_hold(Bucket=wo.bucket, Key="held", VersionId=vid)
    assert got["LegalHold"]["Status"] == "ON"


def test_w01_w08_w09_backup_key_cannot_change_the_bucket(wo: WriteOnly) -> None:
    """W-01 / W-08 / W-09: bucket policy (put, delete), versioning, Object Lock
    configuration, lifecycle (put, delete), bucket and object ACLs and the bucket itself
    are all refused to the backup key; the owner then reads every setting unchanged."""
    w, b = wo.writer, wo.bucket
    vid = wo.put("pack")
    lifecycle = {
        "Rules": [
            {
                "ID": "expire-everything",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "Expiration": {"Days": 1},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            }
        ]
    }
    open_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": f"arn:aws:s3:::{b}/*",
            }
        ],
    }
    attempts: dict[str, Callable[[], object]] = {
        "PutBucketPolicy": lambda: w.put_bucket_policy(Bucket=b, Policy=json.dumps(open_policy)),
        "DeleteBucketPolicy": lambda: w.delete_bucket_policy(Bucket=b),
        "PutBucketVersioning": lambda: w.put_bucket_versioning(
            Bucket=b, VersioningConfiguration={"Status": "Suspended"}
        ),
        "PutObjectLockConfiguration": lambda: w.put_object_lock_configuration(
            Bucket=b,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": GOVERNANCE, "Days": 1}},
            },
        ),
        "PutBucketLifecycleConfiguration": lambda: w.put_bucket_lifecycle_configuration(
            Bucket=b, LifecycleConfiguration=lifecycle
        ),
        "DeleteBucketLifecycle": lambda: w.delete_bucket_lifecycle(Bucket=b),
        "PutBucketAcl": lambda: w.put_bucket_acl(Bucket=b, ACL="public-read-write"),
        "PutObjectAcl": lambda: w.put_object_acl(Bucket=b, Key="pack", ACL="public-read"),
        "PutObjectAcl(version)": lambda: w.put_object_acl(
            Bucket=b, Key="pack", VersionId=vid, ACL="public-read"
        ),
        "DeleteBucket": lambda: w.delete_bucket(Bucket=b),
    }
    codes = {name: refused(call) for name, call in attempts.items()}
    assert codes == dict.fromkeys(attempts, "AccessDenied")
    o = wo.owner
    assert _plain(json.loads(o.get_bucket_policy(Bucket=b)["Policy"])) == _plain(wo.policy)
    assert o.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    lock = o.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
    assert lock == {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as e:
        o.get_bucket_lifecycle_configuration(Bucket=b)
    assert e.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    anonymous = http.client.HTTPConnection(urlsplit(wo.server.endpoint).netloc, timeout=10)
    try:  # the object ACL was not opened to everyone
        anonymous.request("GET", f"/{b}/pack?versionId={vid}")
        assert anonymous.getresponse().status == 403
    finally:
        anonymous.close()


def test_prefix_confines_the_backup_key(s3_server: S3Server, backup_user: User) -> None:
    """With ``prefix``, writes, reads and listings stay under it (listings by the
    s3:prefix condition). HEAD of a missing key under the prefix: 404 on SeaweedFS, 403
    on Ceph RGW (RGW only answers 404 to holders of an *unconditioned* s3:ListBucket;
    S3Store never relies on it: it lists versions first)."""
    wo = _bucket(
        s3_server,
        backup_user,
        lambda bucket: backup_writer_policy(
            bucket, backup_user.arn, "vault1", admin_arn=user_arn(s3_server, OWNER_UID)
        ),
    )
    w, b = wo.writer, wo.bucket
    wo.owner.put_object(Bucket=b, Key="other/x", Body=b"not yours")
    wo.put("vault1/pack")
    assert refused(lambda: wo.put("other/pack")) == "AccessDenied"
    assert refused(lambda: w.get_object(Bucket=b, Key="other/x")) == "AccessDenied"
    assert len(w.list_object_versions(Bucket=b, Prefix="vault1/")["Versions"]) == 1
    assert len(w.list_objects_v2(Bucket=b, Prefix="vault1/")["Contents"]) == 1
    for prefix in ("", "other/"):
        assert refused(w.list_object_versions, Bucket=b, Prefix=prefix) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        w.head_object(Bucket=b, Key="vault1/missing")
    status = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status == {"ceph": 403, "seaweed": 404}[s3_server.name]


# ------------------------------------------------------------------ server differences


def test_legal_hold_header_on_put(wo: WriteOnly) -> None:
    """W-06: a PUT with ``x-amz-object-lock-legal-hold: ON``. AWS requires
    s3:PutObjectLegalHold for it and SeaweedFS refuses it (denied); **Ceph RGW does not
    check that permission on PUT**: the backup key can place a hold on a new object (it
    still cannot remove it -- only add protection, but holds are a compliance decision)."""

    def put() -> Any:
        return wo.writer.put_object(
            Bucket=wo.bucket, Key="held", Body=b"x", ObjectLockLegalHoldStatus="ON"
        )

    if wo.server.name == "ceph":
        vid = put()["VersionId"]
        hold = wo.owner.get_object_legal_hold(Bucket=wo.bucket, Key="held", VersionId=vid)
        assert hold["LegalHold"]["Status"] == "ON"
        assert (
            refused(
                lambda: wo.writer.put_object_legal_hold(
                    Bucket=wo.bucket, Key="held", VersionId=vid, LegalHold={"Status": "OFF"}
                )
            )
            == "AccessDenied"
        )
    else:
        assert refused(put) == "AccessDenied"


def test_put_with_lock_headers_without_put_object_retention(
    s3_server: S3Server, backup_user: User
) -> None:
    """W-01 / W-05: is s3:PutObjectRetention needed to PUT *with* retention headers? On
    SeaweedFS yes (as AWS documents): with it denied, the PUT is refused. **Ceph RGW
    checks only s3:PutObject on a PUT** -- the object is stored with its COMPLIANCE lock
    even though s3:PutObjectRetention is explicitly denied. (Harmless for write-only: a
    lock only adds protection; but RGW cannot be used to stop a key from locking.)"""

    def no_retention(bucket: str) -> dict[str, Any]:
        doc = backup_writer_policy(
            bucket, backup_user.arn, admin_arn=user_arn(s3_server, OWNER_UID)
        )
        for s in doc["Statement"]:
            if s["Effect"] == "Allow" and "s3:PutObjectRetention" in s["Action"]:
                s["Action"].remove("s3:PutObjectRetention")
            elif s["Effect"] == "Deny":
                s["Action"].append("s3:PutObjectRetention")
        return doc

    wo = _bucket(s3_server, backup_user, no_retention)
    until = _day()
    if s3_server.name == "ceph":
        vid = wo.put("pack", COMPLIANCE, until)
        assert wo.retention("pack", vid) == (COMPLIANCE, until)
    else:
        assert refused(wo.put, key="pack", mode=COMPLIANCE, until=until) == "AccessDenied"
    wo.put("plain", mode=None)  # a PUT without lock headers needs only s3:PutObject


def test_without_the_deny_rgw_lets_the_writer_weaken_its_own_objects(
    s3_server: S3Server, backup_user: User
) -> None:
    """W-14 / W-06: why the policy *denies* instead of merely not granting. With only the
    Allow statements, Ceph RGW falls back to the object's ACL for actions the policy does
    not mention -- and the writer owns what it wrote: it can shorten GOVERNANCE retention
    with the bypass header, clear a legal hold and re-grant the object. SeaweedFS (like
    AWS) refuses all three without the Deny."""

    def allow_only(bucket: str) -> dict[str, Any]:
        doc = backup_writer_policy(
            bucket, backup_user.arn, admin_arn=user_arn(s3_server, OWNER_UID)
        )
        doc["Statement"] = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
        return doc

    wo = _bucket(s3_server, backup_user, allow_only)
    w, b = wo.writer, wo.bucket
    vid, held, shorter = wo.put("gov", GOVERNANCE, _day(2)), wo.put("held"), _day(1)
    wo.owner.put_object_legal_hold(Bucket=b, Key="held", VersionId=held, LegalHold={"Status": "ON"})
    attempts: dict[str, Callable[[], object]] = {
        "shorten GOVERNANCE with bypass": lambda: w.put_object_retention(
            Bucket=b,
            Key="gov",
            VersionId=vid,
            Retention={"Mode": GOVERNANCE, "RetainUntilDate": shorter},
            BypassGovernanceRetention=True,
        ),
        "clear legal hold": lambda: w.put_object_legal_hold(
            Bucket=b, Key="held", VersionId=held, LegalHold={"Status": "OFF"}
        ),
        "PutObjectAcl": lambda: w.put_object_acl(
            Bucket=b, Key="gov", VersionId=vid, ACL="public-read"
        ),
    }
    if s3_server.name == "ceph":
        for call in attempts.values():
            call()  # accepted: the gap the explicit Deny closes
        assert wo.retention("gov", vid)[1] == shorter
    else:
        assert {n: refused(c) for n, c in attempts.items()} == dict.fromkeys(
            attempts, "AccessDenied"
        )
    # deletion stays refused either way (RGW checks the *bucket* ACL for it)
    assert refused(lambda: w.delete_object(Bucket=b, Key="gov", VersionId=vid)) == "AccessDenied"


def test_rgw_bucket_owner_needs_the_admin_grant(s3_server: S3Server, backup_user: User) -> None:
    """W-12 / W-07: on Ceph RGW an object belongs to the user that wrote it, so without
    ``admin_arn`` the *bucket owner* cannot read, hold or extend what the backup key
    wrote (AccessDenied) -- verify and legal holds would fail. SeaweedFS lets the owner.
    Deleting a version is a bucket permission on RGW: the owner keeps it (the lock still
    refuses an unexpired one)."""
    wo = _bucket(s3_server, backup_user, lambda b: backup_writer_policy(b, backup_user.arn))
    vid, plain = wo.put("pack"), wo.put("plain", mode=None)
    o, b = wo.owner, wo.bucket
    attempts: dict[str, Callable[[], object]] = {
        "GetObject": lambda: o.get_object(Bucket=b, Key="pack", VersionId=vid),
        "GetObjectRetention": lambda: o.get_object_retention(Bucket=b, Key="pack", VersionId=vid),
        "PutObjectLegalHold": lambda: o.put_object_legal_hold(
            Bucket=b, Key="pack", VersionId=vid, LegalHold={"Status": "ON"}
        ),
    }
    if s3_server.name == "ceph":
        assert {n: refused(c) for n, c in attempts.items()} == dict.fromkeys(
            attempts, "AccessDenied"
        )
    else:
        for call in attempts.values():
            call()
    o.delete_object(Bucket=b, Key="plain", VersionId=plain)
    assert refused(lambda: o.delete_object(Bucket=b, Key="pack", VersionId=vid)) == "AccessDenied"


def test_rgw_op_mask_without_delete(s3_server: S3Server) -> None:
    """W-03 / W-09: RGW's per-user op mask ``read, write`` (no ``delete``) is a second
    lock on deletes, independent of any policy: even under a policy that grants s3:*,
    that user's deletes are refused while its writes and extensions work. It does not
    cover bucket configuration (a lifecycle rule is accepted), so it adds to the bucket
    policy, it does not replace it."""
    if s3_server.name != "ceph":
        pytest.skip("op_mask is a Ceph RGW user setting; SeaweedFS has no equivalent")
    user = _user(s3_server, op_mask="read, write")

    def everything(bucket: str) -> dict[str, Any]:
        resource = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
        statement = {"Effect": "Allow", "Principal": {"AWS": [user.arn]}, "Action": "s3:*"}
        return {"Version": "2012-10-17", "Statement": [{**statement, "Resource": resource}]}

    wo = _bucket(s3_server, user, everything)
    w, b = wo.writer, wo.bucket
    vid, plain = wo.put("pack"), wo.put("plain", mode=None)
    w.put_object_retention(
        Bucket=b,
        Key="pack",
        VersionId=vid,
        Retention={"Mode": COMPLIANCE, "RetainUntilDate": _day(2)},
    )
    assert (
        refused(lambda: w.delete_object(Bucket=b, Key="plain", VersionId=plain)) == "AccessDenied"
    )
    assert refused(lambda: w.delete_object(Bucket=b, Key="plain")) == "AccessDenied"
    assert multi_delete_refused(w, b, {"Key": "plain", "VersionId": plain}) == "AccessDenied"
    w.put_bucket_lifecycle_configuration(
        Bucket=b,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "x",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": 1},
                }
            ]
        },
    )
