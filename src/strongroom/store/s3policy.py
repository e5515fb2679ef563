"""The bucket policy of a write-only backup credential for an S3 Object Lock bucket.

A backup client (``strongroom ingest`` on a host that is itself a target for ransomware
or a careless admin) should hold a key that can **add** records and nothing else: no
delete, no shortening or removal of retention, no legal-hold removal, no change to the
bucket's configuration. :func:`backup_writer_policy` is the one place that policy is
written; ``docs/backup-credentials.md`` shows how to install it on AWS and on Ceph RGW,
and ``tests/test_s3_writeonly.py`` proves on a real Ceph RGW and SeaweedFS what each
server enforces (STORAGE-ASSESSMENTS.md W-03, W-04, W-05, W-09, W-14, W-18).

Allowed (statement ``StrongroomBackupWrite`` / ``StrongroomBackupList``), each because
the backup path of :class:`strongroom.store.s3.S3Store` uses it:

* ``s3:PutObject`` -- store a new object. Object Lock makes every PUT a new version, so
  writing a key twice adds a version and never replaces the first one (W-02); Strongroom
  reads a key's oldest version and ``verify`` reports any extra one.
* ``s3:PutObjectRetention`` -- (1) on AWS (and SeaweedFS), a PUT that carries
  ``x-amz-object-lock-mode`` / ``x-amz-object-lock-retain-until-date`` needs it (Ceph
  RGW 16.2 checks only ``s3:PutObject`` on a PUT); (2) Strongroom re-sets the lock when
  a server dropped the headers, and extends the retention of packs that new records
  reuse. The server itself only lets it *lengthen* a retention: COMPLIANCE can never be
  shortened or lowered to GOVERNANCE (W-04, W-05), and GOVERNANCE can only be shortened
  with ``s3:BypassGovernanceRetention``, which is denied below.
* ``s3:GetObject``, ``s3:GetObjectVersion`` -- read an object back (Strongroom reads a
  pinned version; a retried PUT compares bytes).
* ``s3:GetObjectRetention``, ``s3:GetObjectLegalHold`` -- the write is only complete
  when the lock is read back (HEAD shows the lock headers on AWS only with these).
* ``s3:ListBucket``, ``s3:ListBucketVersions`` -- find a key's versions (which version
  is ours, and whether a put is a retry); on AWS, ``ListBucket`` also makes a missing
  key a 404 instead of a 403. With a ``prefix``, both are limited to listings under it
  (condition ``s3:prefix``).
* ``s3:GetBucketObjectLockConfiguration``, ``s3:GetBucketVersioning`` -- the store
  refuses to open a bucket without Object Lock and versioning (W-01).

Denied explicitly (statement ``StrongroomBackupNeverDestroy``), on the whole bucket, so
that no broader grant elsewhere (an IAM policy attached later, a group, an ACL; an
explicit Deny always wins) can re-enable them:

* ``s3:DeleteObject`` -- no delete markers: a delete marker hides a key from plain GETs
  and listings (W-18). Locked versions would survive one, but a backup key has no
  reason to make one.
* ``s3:DeleteObjectVersion`` -- no deletion of any version, locked or not (W-03); the
  disposal of expired objects is done with another credential.
* ``s3:BypassGovernanceRetention`` -- no shortening or removal of GOVERNANCE retention
  and no deletion through it (W-14).
* ``s3:PutObjectLegalHold`` -- no removal of a legal hold (W-06/W-07). S3 has one action
  for setting and clearing a hold, so setting one is denied too: holds are placed by the
  compliance officer's credential, never by the backup key. (On AWS and SeaweedFS a PUT
  with ``x-amz-object-lock-legal-hold`` is refused as well; Ceph RGW does not check it.)
* ``s3:PutObjectAcl``, ``s3:PutObjectVersionAcl`` -- on Ceph RGW the user that writes an
  object *owns* it and could otherwise re-grant it to anyone (RGW falls back to the
  object's ACL for actions a bucket policy does not mention).
* ``s3:PutBucketPolicy``, ``s3:DeleteBucketPolicy`` -- the key must not rewrite the
  policy that restrains it.
* ``s3:PutBucketAcl`` -- no bucket ACL grants (RGW and AWS consult ACLs).
* ``s3:PutBucketVersioning`` -- no suspending of versioning.
* ``s3:PutBucketObjectLockConfiguration`` -- no change of the default retention.
* ``s3:PutLifecycleConfiguration`` -- no lifecycle rule that expires data (W-09); on
  AWS the same permission covers DeleteBucketLifecycle.
* ``s3:PutReplicationConfiguration`` -- no redirecting of replication (W-10).
* ``s3:DeleteBucket`` -- no deletion of the bucket.

Every action named here is one that Ceph RGW Pacific (16.2) accepts in a bucket policy;
RGW rejects the *whole* policy with ``InvalidArgument`` when it contains an action it
does not know (e.g. ``s3:PutBucketOwnershipControls``, ``s3:PutEncryptionConfiguration``),
so AWS-only actions are left out: on AWS they are denied anyway unless granted.

``admin_arn`` (optional): on Ceph RGW each user is its own owner, and an object belongs
to the user that wrote it -- the *bucket owner* cannot even read the backup key's objects
unless the bucket policy grants it (measured on 16.2.15). With ``admin_arn`` the policy
also allows that principal what Strongroom's full (non-backup) credential does on the
objects: read, retention, legal holds, and ``DeleteObjectVersion`` for disposal after
expiry (the server refuses it before). On AWS, where the bucket-owner account owns the
objects (Object Ownership "bucket owner enforced"), it is not needed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from strongroom.errors import BadInput
from strongroom.store.base import check_name

POLICY_VERSION = "2012-10-17"

#: What the backup key may do on objects (under the prefix).
WRITER_OBJECT_ACTIONS: tuple[str, ...] = (
    "s3:PutObject",
    "s3:PutObjectRetention",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectRetention",
    "s3:GetObjectLegalHold",
)
#: What the backup key may do on the bucket itself.
WRITER_BUCKET_ACTIONS: tuple[str, ...] = (
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketVersioning",
)
#: Listings (limited to the prefix when there is one).
WRITER_LIST_ACTIONS: tuple[str, ...] = ("s3:ListBucket", "s3:ListBucketVersions")
#: Denied to the backup key on the whole bucket, whatever else grants them.
WRITER_DENIED_ACTIONS: tuple[str, ...] = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectLegalHold",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutBucketVersioning",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:DeleteBucket",
)
#: What ``admin_arn`` may do on the objects (Strongroom's full credential; RGW needs it).
ADMIN_OBJECT_ACTIONS: tuple[str, ...] = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObjectRetention",
    "s3:GetObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:GetObjectLegalHold",
    "s3:DeleteObjectVersion",
)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ARN = re.compile(r"arn:[a-z0-9-]+:iam::[A-Za-z0-9_$-]*:[A-Za-z0-9_+=,.@/-]+")


def _check(bucket: str, arn: str, what: str) -> None:
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise BadInput(f"{bucket!r} is not an S3 bucket name")
    if not _ARN.fullmatch(arn):
        raise BadInput(
            f"{what} {arn!r} is not an IAM principal ARN",
            "AWS: arn:aws:iam::ACCOUNT:user/NAME; Ceph RGW: arn:aws:iam:::user/UID "
            "(arn:aws:iam::TENANT:user/UID for a tenant user).",
        )


def backup_writer_policy(
    bucket: str, principal_arn: str, prefix: str = "", *, admin_arn: str | None = None
) -> dict[str, Any]:
    """The bucket policy that makes ``principal_arn`` a write-only backup key.

    ``prefix`` (a vault's path inside the bucket, as in ``s3://bucket/prefix``) limits
    the writes, reads and listings to that prefix; the denials always cover the whole
    bucket. ``admin_arn`` also grants Strongroom's full credential the object actions
    it needs on Ceph RGW (see the module doc). The result is a JSON-ready dict; install
    it with PutBucketPolicy (it replaces the bucket's whole policy).
    """
    _check(bucket, principal_arn, "principal")
    if admin_arn is not None:
        _check(bucket, admin_arn, "admin principal")
        if admin_arn == principal_arn:
            raise BadInput("the backup key and the admin principal must be different users")
    prefix = prefix.strip("/")
    if prefix:
        check_name(prefix)
        prefix += "/"
    bucket_arn = f"arn:aws:s3:::{bucket}"
    objects_arn = f"{bucket_arn}/{prefix}*"
    writer = {"AWS": [principal_arn]}
    listing: dict[str, Any] = {
        "Sid": "StrongroomBackupList",
        "Effect": "Allow",
        "Principal": writer,
        "Action": list(WRITER_LIST_ACTIONS),
        "Resource": [bucket_arn],
    }
    if prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "StrongroomBackupWrite",
            "Effect": "Allow",
            "Principal": writer,
            "Action": list(WRITER_OBJECT_ACTIONS),
            "Resource": [objects_arn],
        },
        {
            "Sid": "StrongroomBackupBucketRead",
            "Effect": "Allow",
            "Principal": writer,
            "Action": list(WRITER_BUCKET_ACTIONS),
            "Resource": [bucket_arn],
        },
        listing,
        {
            "Sid": "StrongroomBackupNeverDestroy",
            "Effect": "Deny",
            "Principal": writer,
            "Action": list(WRITER_DENIED_ACTIONS),
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
        },
    ]
    if admin_arn is not None:
        statements.append(
            {
                "Sid": "StrongroomAdminObjects",
                "Effect": "Allow",
                "Principal": {"AWS": [admin_arn]},
                "Action": list(ADMIN_OBJECT_ACTIONS),
                "Resource": [objects_arn],
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def rgw_user_arn(uid: str, tenant: str = "") -> str:
    """The principal ARN of a Ceph RGW user in a bucket policy (``arn:aws:iam::TENANT:user/UID``,
    TENANT empty for users without a tenant)."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", uid) or not re.fullmatch(r"[A-Za-z0-9_-]*", tenant):
        raise BadInput(f"{tenant + '$' if tenant else ''}{uid!r} is not an RGW user id")
    return f"arn:aws:iam::{tenant}:user/{uid}"


def policy_json(policy: dict[str, Any]) -> str:
    """The policy as the JSON text to install or print (stable key order, 2-space indent)."""
    return json.dumps(policy, indent=2) + "\n"
