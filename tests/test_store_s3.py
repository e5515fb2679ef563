"""S3Store on real Object Lock servers (Ceph RGW, SeaweedFS): the store contract, and
what the storage itself must refuse (../shared/regulatory/STORAGE-ASSESSMENTS.md).

Every test here runs once per server (the ``s3`` fixture). moto is not used: it
accepts what AWS refuses (shortening COMPLIANCE retention, for one).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strongroom.errors import ObjectExists, Refused, StorageError
from strongroom.store import LocalStore, RetentionMode, open_store
from strongroom.store.replicated import ReplicatedStore
from strongroom.store.s3 import S3Store
from tests.s3fixtures import S3Target, unique_prefix
from tests.store_contract import FakeClock, MakeStore, RealClock, StoreContract


class TestS3StoreContract(StoreContract):
    REJECTS_OBJECT_DIRECTORY_CLASH = False
    SHORT = timedelta(seconds=2)
    RESOLUTION = timedelta(seconds=1)
    CREATED_SLACK = timedelta(seconds=3)

    @pytest.fixture
    def clock(self) -> FakeClock:
        return RealClock()

    @pytest.fixture
    def make_store(self, s3: S3Target) -> MakeStore:
        url = s3.url(unique_prefix())
        return lambda clock: S3Store(url, clock.now)


def _now() -> datetime:
    return datetime.now(UTC)


def _day() -> datetime:
    return _now().replace(microsecond=0) + timedelta(days=1)


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


@pytest.fixture
def store(s3: S3Target) -> S3Store:
    return S3Store(s3.url(unique_prefix()), _now)


def test_w01_bucket_without_object_lock_is_refused(s3: S3Target) -> None:
    """W-01 / F2-i-B-1: a bucket without Object Lock (versioned or not) is refused at
    open, naming what to change."""
    for versioning in (False, True):
        bucket = s3.new_bucket(lock=False, versioning=versioning)
        with pytest.raises(Refused, match="Object Lock") as e:
            open_store(s3.url("v", bucket=bucket), _now)
        assert e.value.remedy is not None and "object-lock-enabled-for-bucket" in e.value.remedy


def test_w01_missing_bucket_is_a_clear_error(s3: S3Target) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        open_store(s3.url("v", bucket="no-such-bucket-strongroom"), _now)


def test_w03_w04_f2ib1_direct_s3_delete_and_shorten_are_refused(
    s3: S3Target, store: S3Store
) -> None:
    """W-03 / W-04 / F2-i-B-1: with the S3 API directly (not our code), deleting the
    version or shortening its retention fails, in COMPLIANCE even with the governance
    bypass; the object is intact afterwards."""
    until = _day()
    store.put("pack", b"records", retain_until=until)
    c, key, vid = s3.client(), store._key("pack"), store._version("pack")
    with pytest.raises(ClientError) as e:
        c.delete_object(Bucket=s3.bucket, Key=key, VersionId=vid)
    assert _code(e.value) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        c.delete_object(Bucket=s3.bucket, Key=key, VersionId=vid, BypassGovernanceRetention=True)
    assert _code(e.value) == "AccessDenied"
    for bypass in (False, True):
        with pytest.raises(ClientError) as e:
            c.put_object_retention(
                Bucket=s3.bucket,
                Key=key,
                VersionId=vid,
                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(hours=1)},
                BypassGovernanceRetention=bypass,
            )
        assert _code(e.value) == "AccessDenied"
        with pytest.raises(ClientError):
            c.put_object_retention(
                Bucket=s3.bucket,
                Key=key,
                VersionId=vid,
                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
                BypassGovernanceRetention=bypass,
            )
    assert store.get("pack") == b"records"
    info = store.head("pack")
    assert info.retain_until == until and info.mode is RetentionMode.COMPLIANCE


def test_w02_direct_overwrite_and_delete_marker_leave_the_original(
    s3: S3Target, store: S3Store
) -> None:
    """W-02 / W-09: a PUT of the same key from outside makes a new version and a DELETE
    without version id makes a delete marker — neither touches the locked original,
    which the store still reads (it pins the oldest version) and reports beside them."""
    store.put("pack", b"original", retain_until=_day())
    c, key = s3.client(), store._key("pack")
    c.put_object(Bucket=s3.bucket, Key=key, Body=b"forged")
    assert store.get("pack") == b"original"
    c.delete_object(Bucket=s3.bucket, Key=key)  # a delete marker on top
    fresh = S3Store(store.url + f"?endpoint={s3.server.endpoint}&region={s3.server.region}", _now)
    assert fresh.get("pack") == b"original"
    assert "pack" in list(fresh.list())
    kinds = [v["DeleteMarker"] for v in fresh.versions("pack")]
    assert kinds.count(True) == 1 and kinds.count(False) == 2
    with pytest.raises(ObjectExists):
        fresh.put("pack", b"forged", retain_until=_day())


def test_w02_w18_version_written_in_the_same_second_is_not_taken_for_ours(
    s3: S3Target, store: S3Store
) -> None:
    """W-02 / W-18: S3 times a version to the second. A forged version written in the
    same second as ours must not be read in its place — neither through verify's
    inventory nor through a plain read (found flaky before: the tie was broken by
    version id)."""
    c = s3.client()
    for i in range(8):
        store.put(f"pack{i}", b"original", retain_until=_day())
        c.put_object(Bucket=s3.bucket, Key=store._key(f"pack{i}"), Body=b"forged")
    url = store.url + f"?endpoint={s3.server.endpoint}&region={s3.server.region}"
    by_inventory, by_listing = S3Store(url, _now), S3Store(url, _now)
    assert all(len(inv.versions) == 2 for inv in by_inventory.inventory().values())
    for i in range(8):
        for fresh in (by_inventory, by_listing):
            assert fresh.get(f"pack{i}") == b"original"
            assert fresh.head(f"pack{i}").mode == RetentionMode.COMPLIANCE


class _DroppingClient:
    """A client that loses the Object Lock headers of PUTs (as Ceph Pacific does for
    multipart uploads), to show the read-back repairs the lock."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def put_object(self, **kw: Any) -> Any:
        for k in ("ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"):
            kw.pop(k, None)
        return self._real.put_object(**kw)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return getattr(self._real, name)  # type: ignore[no-any-return]


def test_lock_dropped_by_the_server_is_set_again(s3: S3Target) -> None:
    """Build 2: after every write the lock is read back; a missing one is set with
    PutObjectRetention / PutObjectLegalHold before the put returns."""
    store = S3Store(s3.url(unique_prefix()), _now, client=_DroppingClient(s3.client()))
    until = _day()
    info = store.put("p", b"x", retain_until=until, legal_hold=True)
    assert (info.mode, info.retain_until, info.legal_hold) == (
        RetentionMode.COMPLIANCE,
        until,
        True,
    )
    h = s3.client().head_object(Bucket=s3.bucket, Key=store._key("p"))
    assert h["ObjectLockMode"] == "COMPLIANCE" and h["ObjectLockLegalHoldStatus"] == "ON"


def test_retain_until_is_rounded_up_never_down(store: S3Store) -> None:
    """S3 keeps whole seconds: a retain-until with microseconds is stored at the next
    second (rounding down would shorten retention)."""
    want = _day() + timedelta(microseconds=1)
    info = store.put("r", b"x", retain_until=want)
    assert info.retain_until == want.replace(microsecond=0) + timedelta(seconds=1)


def test_put_many_is_parallel_and_complete(store: S3Store) -> None:
    items = [(f"tile/{i:03d}", bytes([i]) * 100) for i in range(40)]
    infos = store.put_many(items, retain_until=_day())
    assert [i.name for i in infos] == [n for n, _ in items]
    assert list(store.list("tile/")) == [n for n, _ in items]
    assert all(store.get(n) == d for n, d in items[::7])


def test_w08_bucket_with_locked_objects_cannot_be_deleted(s3: S3Target) -> None:
    """W-08: deleting a bucket that holds unexpired locked data is refused."""
    bucket = s3.new_bucket()
    store = S3Store(s3.url("p", bucket=bucket), _now)
    store.put("pack", b"x", retain_until=_day())
    with pytest.raises(ClientError) as e:
        s3.client().delete_bucket(Bucket=bucket)
    assert _code(e.value) == "BucketNotEmpty"
    assert store.get("pack") == b"x"


def test_w10_replica_copy_has_the_same_lock_and_refuses_delete(
    s3: S3Target, tmp_path: Path
) -> None:
    """W-10: the replica's copy carries the same retain-until and hold, and the storage
    refuses to delete it there too."""
    replica = S3Store(s3.url(unique_prefix()), _now)
    store = ReplicatedStore(LocalStore(tmp_path / "primary", _now), replica)
    until = _day()
    store.put("pack", b"records", retain_until=until)
    store.set_legal_hold("pack", True)
    p, r = store.primary.head("pack"), replica.head("pack")
    assert (r.retain_until, r.mode, r.legal_hold) == (p.retain_until, p.mode, p.legal_hold)
    assert (r.retain_until, r.legal_hold) == (until, True)
    with pytest.raises(ClientError) as e:
        s3.client().delete_object(
            Bucket=s3.bucket, Key=replica._key("pack"), VersionId=replica._version("pack")
        )
    assert _code(e.value) == "AccessDenied"
    with pytest.raises(Refused):
        store.delete("pack")
    store.close()


def test_w11_put_with_a_wrong_checksum_is_rejected(s3: S3Target, store: S3Store) -> None:
    """W-11: the server rejects a PUT whose checksum does not match; ours (boto3's
    default checksums) is accepted, and the bytes read back hash-equal."""
    with pytest.raises(ClientError) as e:
        s3.client().put_object(
            Bucket=s3.bucket,
            Key=store._key("bad"),
            Body=b"payload",
            ContentMD5=base64.b64encode(hashlib.md5(b"other").digest()).decode(),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=_day(),
        )
    assert _code(e.value) in ("BadDigest", "InvalidDigest")
    assert not store.exists("bad")
    data = os.urandom(100_000)
    store.put("good", data, retain_until=_day())
    assert hashlib.sha256(store.get("good")).digest() == hashlib.sha256(data).digest()
