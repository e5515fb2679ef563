"""S3 Object Lock backend: the storage itself refuses to overwrite, delete or shorten.

SEC 17a-4(f)(2)(i)(B) wants the non-rewriteable, non-erasable property enforced by
the storage, not by our code (REQUIREMENTS.md F2-i-B-1/2). A bucket with Object Lock
enabled (which implies versioning) gives that: every object this backend writes
carries a retain-until date and a mode (COMPLIANCE unless the vault chose
GOVERNANCE), legal holds are the object's legal-hold flag, and retention is extended
with PutObjectRetention, which the server refuses to shorten.

What the server guarantees is checked, not assumed:

* On open, the bucket must have Object Lock enabled and versioning on (W-01), or the
  store refuses to open, naming what to change.
* After every write the lock is read back from the version just written; a missing or
  short lock (Ceph Pacific silently drops lock headers on multipart uploads — we never
  use multipart, but a proxy or another server might drop headers too) is set again
  with PutObjectRetention / PutObjectLegalHold, and if it still does not hold the
  write fails.
* Reads pin a version. Our keys are never overwritten by us, so the object is the
  key's *oldest* version; a delete marker or an extra version planted from outside
  (anyone with write access to the bucket can add them) does not change what we read,
  and :meth:`S3Store.versions` reports them for ``verify``.

Retain-until dates are sent rounded *up* to the whole second (S3 keeps seconds; a
rounded-down date would shorten retention).

Endpoint, region and credentials come from the store URL's query
(``s3://bucket/prefix?endpoint=http://127.0.0.1:7480&region=us-east-1``) or the
standard AWS chain (``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_PROFILE``, ``~/.aws/config`` ...). Credentials are never taken from the URL, so
they cannot end up in a log line or a vault config.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from strongroom.errors import AuthError, BadInput, NotFound, ObjectExists, Refused, StorageError
from strongroom.store.base import Now, ObjectInfo, RetentionMode, check_name, utc
from strongroom.store.rules import LockState, check_range, iso

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})
_AUTH = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"})
PUT_THREADS = 8  # concurrent PUTs of one put_many (each is one HTTP request)
_NEVER = datetime.min.replace(tzinfo=UTC)
_NAME_CHARS = re.compile(r"[A-Za-z0-9._/-]*")
_WEAKEST = RetentionMode.GOVERNANCE


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"
    endpoint: str | None
    region: str | None

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme.lower() != "s3" or not parts.netloc:
            raise BadInput(f"store URL {url!r} is not of the form s3://bucket/prefix")
        if "@" in parts.netloc or parts.password or parts.username:
            raise BadInput(
                "credentials do not belong in the store URL",
                "Use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role.",
            )
        query = parse_qs(parts.query, strict_parsing=False)
        unknown = set(query) - {"endpoint", "region"}
        if unknown or parts.fragment:
            raise BadInput(
                f"store URL {url!r} has unknown parameters {sorted(unknown)}",
                "Only ?endpoint=URL and &region=NAME are understood.",
            )
        prefix = parts.path.strip("/")
        if prefix:
            check_name(prefix)
            prefix += "/"
        return cls(
            parts.netloc,
            prefix,
            query.get("endpoint", [None])[-1],
            query.get("region", [None])[-1],
        )

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _ceil_second(dt: datetime) -> datetime:
    dt = utc(dt)
    if dt.microsecond:
        dt = dt.replace(microsecond=0) + timedelta(seconds=1)
    return dt


@dataclass(slots=True)
class Inventory:
    """The versions of one key (oldest is ours) and how many delete markers sit on it."""

    versions: list[tuple[datetime, str]] = field(default_factory=list)
    delete_markers: int = 0

    @property
    def original(self) -> str:
        """The oldest version: the one Strongroom wrote (it never writes a key twice).
        ``versions`` is in listing order, newest first (as S3 lists a key's versions):
        times have a resolution of one second, so a version written in the same second
        as ours is told apart by its place in the listing, never by its version id
        (which is random on Ceph and sorts newest first on SeaweedFS)."""
        oldest = min(t for t, _ in self.versions)
        return [vid for t, vid in self.versions if t == oldest][-1]


class S3Store:
    """A write-once store in an S3 bucket with Object Lock (see the module doc)."""

    def __init__(self, url: str, now: Now, *, client: Any = None) -> None:
        self.loc = S3Location.parse(url)
        self.url = self.loc.url
        self._now = now
        self._versions: dict[str, str] = {}
        self._mutex = threading.Lock()
        if client is None:
            endpoint = (
                self.loc.endpoint
                or os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL")
            )
            config = Config(
                # path-style for S3-compatible servers (Ceph, SeaweedFS, MinIO); AWS
                # chooses for itself
                s3={"addressing_style": "path" if endpoint else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=10,
                read_timeout=120,
                max_pool_connections=PUT_THREADS * 2,
            )
            try:
                client = boto3.session.Session().client(
                    "s3", endpoint_url=self.loc.endpoint, region_name=self.loc.region, config=config
                )
            except BotoCoreError as e:
                raise StorageError(f"cannot set up the S3 client for {self.url}: {e}") from e
        self.s3 = client
        self.check_bucket()

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    # ------------------------------------------------------------ helpers

    def _key(self, name: str) -> str:
        return self.loc.prefix + check_name(name)

    def _call(self, what: str, name: str | None, fn: Any, **kw: Any) -> Any:
        """One S3 request, with S3's errors turned into ours."""
        where = f"{name!r} in {self.url}" if name else self.url
        try:
            return fn(Bucket=self.loc.bucket, **kw)
        except ClientError as e:
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            msg = str(err.get("Message", "")) or code
            if code in _NOT_FOUND or (status == 404 and code != "NoSuchBucket"):
                raise NotFound(f"no object {where}") from e
            if code in _AUTH:
                raise AuthError(
                    f"S3 rejected the credentials while {what} {where}: {code}",
                    "Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile in use.",
                ) from e
            if code == "NoSuchBucket":
                raise StorageError(
                    f"bucket {self.loc.bucket!r} does not exist",
                    "Create it with Object Lock enabled (docs/deployment.md).",
                ) from e
            if code == "AccessDenied" or status == 403:
                raise Refused(f"S3 refused {what} {where}: {msg}") from e
            raise StorageError(f"S3 error while {what} {where}: {code} {msg}".strip()) from e
        except BotoCoreError as e:
            raise StorageError(f"cannot reach S3 while {what} {where}: {e}") from e

    def check_bucket(self) -> None:
        """W-01: Object Lock enabled and versioning on, or refuse to store anything."""
        remedy = (
            f"Use a bucket created with Object Lock enabled (versioning comes with it), e.g. "
            f"'aws s3api create-bucket --bucket {self.loc.bucket} "
            "--object-lock-enabled-for-bucket'; see docs/deployment.md."
        )
        try:
            conf = self._call(
                "reading the Object Lock configuration of",
                None,
                self.s3.get_object_lock_configuration,
            )
        except (NotFound, StorageError) as e:
            if isinstance(e, StorageError) and "does not exist" in e.message:
                raise
            raise Refused(
                f"bucket {self.loc.bucket!r} does not have Object Lock enabled: records "
                "stored there could be deleted or overwritten (SEC 17a-4(f)(2)(i)(B))",
                remedy,
            ) from e
        lock = conf.get("ObjectLockConfiguration", {})
        if lock.get("ObjectLockEnabled") != "Enabled":
            raise Refused(f"bucket {self.loc.bucket!r} does not have Object Lock enabled", remedy)
        ver = self._call("reading the versioning state of", None, self.s3.get_bucket_versioning)
        if ver.get("Status") != "Enabled":
            raise Refused(
                f"bucket {self.loc.bucket!r} has versioning {ver.get('Status', 'off')!r}; "
                "Object Lock needs it enabled",
                remedy,
            )

    def versions(self, name: str) -> list[dict[str, Any]]:
        """All versions and delete markers of ``name``, newest first (for ``verify``):
        dicts with ``VersionId``, ``IsLatest``, ``LastModified`` and ``DeleteMarker``."""
        check_name(name)
        out = [
            {**v, "DeleteMarker": marker}
            for key, v, marker in self._all_versions(name, f"listing the versions of {name!r} in")
            if key == name
        ]
        out.sort(key=lambda v: (v["LastModified"], not v["DeleteMarker"]), reverse=True)
        return out

    def _all_versions(self, prefix: str, what: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
        """Every version and delete marker whose name starts with ``prefix``: (name,
        the listing's dict, is a delete marker), page by page."""
        n = len(self.loc.prefix)
        marker: dict[str, str] = {}
        while True:
            page = self._call(
                what, None, self.s3.list_object_versions, Prefix=self.loc.prefix + prefix, **marker
            )
            for v in page.get("Versions", []):
                yield v["Key"][n:], v, False
            for v in page.get("DeleteMarkers", []):
                yield v["Key"][n:], v, True
            if not page.get("IsTruncated"):
                return
            marker = {
                "KeyMarker": page["NextKeyMarker"],
                "VersionIdMarker": page["NextVersionIdMarker"],
            }

    def inventory(self) -> dict[str, Inventory]:
        """Every key under the prefix with its versions and delete markers, in one
        paginated listing (for ``verify``); also remembers each key's original version,
        so the reads that follow need no listing of their own."""
        found: dict[str, Inventory] = {}
        for key, v, marker in self._all_versions("", "listing the versions in"):
            inv = found.setdefault(key, Inventory())
            if marker:
                inv.delete_markers += 1
            else:
                inv.versions.append((utc(v["LastModified"]), str(v["VersionId"])))
        with self._mutex:
            for name, inv in found.items():
                if inv.versions and name not in self._versions:
                    self._versions[name] = inv.original
        return found

    def _version(self, name: str) -> str:
        """The version we read: the one we wrote, else the key's oldest real version."""
        with self._mutex:
            vid = self._versions.get(name)
        if vid is not None:
            return vid
        real = [v for v in self.versions(name) if not v["DeleteMarker"]]
        if not real:
            raise NotFound(f"no object {name!r} in {self.url}")
        vid = str(real[-1]["VersionId"])
        with self._mutex:
            self._versions[name] = vid
        return vid

    def _state(self, name: str, vid: str) -> LockState:
        h = self._call(
            "reading the lock of", name, self.s3.head_object, Key=self._key(name), VersionId=vid
        )
        until = h.get("ObjectLockRetainUntilDate")
        mode = h.get("ObjectLockMode")
        # an object without a lock reads as the weakest state: GOVERNANCE, until year 1
        return LockState(
            utc(until) if until is not None else _NEVER,
            RetentionMode(mode) if mode in ("COMPLIANCE", "GOVERNANCE") else _WEAKEST,
            h.get("ObjectLockLegalHoldStatus") == "ON",
            int(h["ContentLength"]),
            utc(h["LastModified"]),
        )

    def _lock(self, name: str, vid: str, until: datetime, mode: RetentionMode) -> None:
        self._call(
            "setting the retention of",
            name,
            self.s3.put_object_retention,
            Key=self._key(name),
            VersionId=vid,
            Retention={"Mode": mode.value, "RetainUntilDate": _ceil_second(until)},
            # only ever used to *raise* GOVERNANCE to COMPLIANCE, which S3 treats as a
            # governance change; shortening stays refused for COMPLIANCE whatever this says
            BypassGovernanceRetention=mode is RetentionMode.COMPLIANCE,
        )

    def _hold(self, name: str, vid: str, on: bool) -> None:
        self._call(
            "setting the legal hold of",
            name,
            self.s3.put_object_legal_hold,
            Key=self._key(name),
            VersionId=vid,
            LegalHold={"Status": "ON" if on else "OFF"},
        )

    def _ensure(self, name: str, vid: str, want: LockState) -> LockState:
        """Read the lock back; set what is missing or short; fail if it still is."""
        got = self._state(name, vid)
        fixed = False
        if got.retain_until < want.retain_until or _weaker(got.mode, want.mode):
            self._lock(name, vid, max(got.retain_until, want.retain_until), want.mode)
            fixed = True
        if want.legal_hold and not got.legal_hold:
            self._hold(name, vid, True)
            fixed = True
        if fixed:
            got = self._state(name, vid)
        if (
            got.retain_until < want.retain_until
            or _weaker(got.mode, want.mode)
            or (want.legal_hold and not got.legal_hold)
        ):
            raise StorageError(
                f"{self.url} did not keep the lock of {name!r}: asked for {want.mode} until "
                f"{iso(want.retain_until)}{' with legal hold' if want.legal_hold else ''}, it "
                f"reports {got.mode.value} until {iso(got.retain_until)}",
                "The S3 server does not enforce Object Lock as it should; do not store "
                "records there.",
            )
        return got

    # ------------------------------------------------------------ protocol

    def put(
        self,
        name: str,
        data: bytes | bytearray,
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
        legal_hold: bool = False,
    ) -> ObjectInfo:
        key = self._key(name)
        until = _ceil_second(retain_until)
        mode = RetentionMode(mode)
        try:
            vid = self._version(name)
        except NotFound:
            vid = None
        if vid is not None:
            return self._put_existing(name, vid, data, until, mode, legal_hold)
        kw: dict[str, Any] = {
            "Key": key,
            "Body": data,
            "ObjectLockMode": mode.value,
            "ObjectLockRetainUntilDate": until,
        }
        if legal_hold:
            kw["ObjectLockLegalHoldStatus"] = "ON"
        r = self._call("storing", name, self.s3.put_object, **kw)
        vid = r.get("VersionId")
        if not vid:
            raise StorageError(
                f"{self.url} returned no version id for {name!r}: versioning is off",
                "Object Lock buckets are always versioned; check the bucket.",
            )
        with self._mutex:
            self._versions[name] = str(vid)
        want = LockState(until, mode, legal_hold, len(data), utc(self._now()))
        return self._ensure(name, str(vid), want).info(name)

    def _put_existing(
        self,
        name: str,
        vid: str,
        data: bytes | bytearray,
        until: datetime,
        mode: RetentionMode,
        hold: bool,
    ) -> ObjectInfo:
        """``put`` onto an existing object: identical bytes → retry, else ObjectExists."""
        state = self._state(name, vid)
        if state.size != len(data) or self.get(name) != data:
            raise ObjectExists(
                f"{name!r} already exists in {self.url} with different content; "
                "objects are never overwritten"
            )
        new = state.merged_for_retry(until, mode, hold)
        if new == state:
            return state.info(name)
        return self._ensure(name, vid, new).info(name)

    def put_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
    ) -> list[ObjectInfo]:
        """The PUTs of the batch in parallel (each is durable when S3 answers it)."""
        if len(items) < 2:
            return [self.put(n, d, retain_until=retain_until, mode=mode) for n, d in items]
        with ThreadPoolExecutor(max_workers=PUT_THREADS, thread_name_prefix="s3-put") as pool:
            futures = [
                pool.submit(self.put, n, d, retain_until=retain_until, mode=mode) for n, d in items
            ]
            return [f.result() for f in futures]

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        check_range(offset, length)
        if length == 0:
            self._version(name)  # NotFound still applies
            return b""
        rng = f"bytes={offset}-" if length is None else f"bytes={offset}-{offset + length - 1}"
        vid = self._version(name)
        try:
            r = self._call(
                "reading", name, self.s3.get_object, Key=self._key(name), VersionId=vid, Range=rng
            )
        except StorageError as e:
            if "InvalidRange" in e.message:  # at or past the end: nothing to read
                return b""
            raise
        body = r["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def head(self, name: str) -> ObjectInfo:
        return self._state(name, self._version(name)).info(name)

    def exists(self, name: str) -> bool:
        try:
            self._version(name)
        except NotFound:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        """Names with at least one real version (a delete marker hides nothing from
        us), sorted."""
        if not _NAME_CHARS.fullmatch(prefix):
            return iter(())  # no valid name starts so (and some servers fail on such)
        names = {key for key, _, marker in self._all_versions(prefix, "listing") if not marker}
        return iter(sorted(names))

    def extend_retention(self, name: str, retain_until: datetime) -> ObjectInfo:
        vid = self._version(name)
        state = self._state(name, vid)
        new = state.extended(name, _ceil_second(retain_until))  # Refused if earlier
        if new == state:
            return state.info(name)
        self._lock(name, vid, new.retain_until, state.mode)
        return self._ensure(name, vid, new).info(name)

    def set_legal_hold(self, name: str, on: bool) -> ObjectInfo:
        vid = self._version(name)
        self._hold(name, vid, on)
        got = self._state(name, vid)
        if got.legal_hold != on:
            raise StorageError(
                f"{self.url} did not {'set' if on else 'clear'} the hold of {name!r}"
            )
        return got.info(name)

    def delete(self, name: str) -> None:
        """Delete our version of an expired, unheld object (the server checks too)."""
        vid = self._version(name)
        self._state(name, vid).check_delete(name, self._now())
        self._call("deleting", name, self.s3.delete_object, Key=self._key(name), VersionId=vid)
        with self._mutex:
            self._versions.pop(name, None)

    def close(self) -> None:
        close = getattr(self.s3, "close", None)
        if close is not None:
            close()


def _weaker(got: RetentionMode, want: RetentionMode) -> bool:
    return want is RetentionMode.COMPLIANCE and got is not RetentionMode.COMPLIANCE
