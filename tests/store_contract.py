"""The store contract: behaviour every backend must show, whatever it stores on.

A backend's test module subclasses :class:`StoreContract` and provides a
``make_store`` fixture (a factory taking a :class:`FakeClock`); pytest then runs
every test here against that backend::

    class TestLocalStore(StoreContract):
        @pytest.fixture
        def make_store(self, tmp_path: Path) -> MakeStore:
            return lambda clock: LocalStore(tmp_path / "store", clock.now)

Tests carry the storage-conformance IDs of STORAGE-ASSESSMENTS.md §4 (``w02`` …)
and the requirement IDs of REQUIREMENTS.md (``f2ib1`` = F2-i-B-1, ``f2ib3`` =
F2-i-B-3) in their names where one applies. IDs about bucket configuration,
containers, lifecycle rules, replicas, audit, event-based retention, keys and
delete markers (W-01, W-08, W-09, W-10, W-15 … W-18) are not properties of this
interface and are tested at the vault and S3 layers.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.errors import BadInput, NotFound, ObjectExists, Refused
from strongroom.store import ObjectInfo, RetentionMode, Store

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
MIB = 1024 * 1024


class FakeClock:
    """A clock that only moves when the test says so; give ``clock.now`` to a store."""

    def __init__(self, start: datetime = T0) -> None:
        self._t = start

    def now(self) -> datetime:
        return self._t

    def advance(self, delta: timedelta) -> None:
        self._t += delta

    def set(self, when: datetime) -> None:
        self._t = when


class RealClock(FakeClock):
    """Wall-clock time, for servers that enforce retention by their own clock (S3):
    moving it forward means waiting."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, delta: timedelta) -> None:
        time.sleep(delta.total_seconds())

    def set(self, when: datetime) -> None:
        # a little past ``when``: the server's clock is read a moment later than ours
        time.sleep(max(0.0, (when - self.now()).total_seconds()) + 0.25)


MakeStore = Callable[[FakeClock], Store]

# ---------------------------------------------------------------- name strategies

_SEG = re.compile(r"[A-Za-z0-9._-]+")


def is_valid_name(name: str) -> bool:
    """Independent oracle for the naming rule (not a copy of ``check_name``)."""
    return 0 < len(name) <= 512 and all(
        _SEG.fullmatch(s) is not None and s not in (".", "..") for s in name.split("/")
    )


_good_seg = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,10}", fullmatch=True)
_bad_seg = st.one_of(
    st.sampled_from(["", ".", ".."]),
    st.text(min_size=1, max_size=6).filter(lambda s: "/" not in s and not _SEG.fullmatch(s)),
    st.builds(
        lambda a, c, b: a + c + b,
        _good_seg,
        st.sampled_from(["\x00", "\\", " ", "\n", "\t", "é", "\u2215", "\uff0f", ":", "*", "~"]),
        _good_seg,
    ),
)
INVALID_NAMES = st.one_of(
    st.builds(
        lambda pre, bad, post, lead, trail: (
            ("/" if lead else "") + "/".join([*pre, bad, *post]) + ("/" if trail else "")
        ),
        st.lists(_good_seg, max_size=3),
        _bad_seg,
        st.lists(_good_seg, max_size=3),
        st.booleans(),
        st.booleans(),
    ),
    st.builds(lambda name: "/" + name, _good_seg),
    st.builds(lambda name: name + "/", _good_seg),
    st.integers(513, 700).map(lambda n: "a" * n),
    st.integers(86, 120).map(lambda n: "/".join(["abcde"] * n)),
).filter(lambda n: not is_valid_name(n))

# Leaves end in ".dat" and directory segments have no dot, so generated names never
# collide as object-versus-directory (which path-mapped backends refuse).
VALID_NAMES = st.builds(
    lambda dirs, leaf: "/".join([*dirs, leaf + ".dat"]),
    st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,10}", fullmatch=True), max_size=3),
    _good_seg,
)

# The store fixture is reused across examples on purpose (these tests only add
# objects that later examples may retry). The same test runs once per backend
# subclass ("differing executors"); examples are valid for every backend, so sharing
# the example database between them is harmless.
_fixture_settings = settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


def _names(store: Store, prefix: str = "") -> list[str]:
    return list(store.list(prefix))


# ------------------------------------------------------------------------ contract


class StoreContract:
    """Tests every backend must pass; subclass and provide ``make_store``."""

    #: False for backends with a flat namespace (S3), which can hold ``a`` and ``a/b``
    REJECTS_OBJECT_DIRECTORY_CLASH = True
    #: a retention that tests wait out: a day of fake time, or seconds of real time
    SHORT = DAY
    #: how finely retain-until is kept (S3: whole seconds, rounded up, never down)
    RESOLUTION = timedelta(0)
    #: how far a reported creation time may be from the clock's (a server stamps it)
    CREATED_SLACK = timedelta(0)

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def t0(self, clock: FakeClock) -> datetime:
        """The tests' time origin: the clock's start, rounded up to a whole second."""
        now = clock.now()
        return now.replace(microsecond=0) + timedelta(seconds=1 if now.microsecond else 0)

    def kept(self, when: datetime) -> datetime:
        """The retain-until a backend reports for a requested one."""
        if not self.RESOLUTION:
            return when
        step = self.RESOLUTION.total_seconds()
        secs = math.ceil(when.timestamp() / step) * step
        return datetime.fromtimestamp(secs, UTC)

    def created_near(self, info: ObjectInfo, expected: datetime) -> bool:
        return abs(info.created - expected) <= self.CREATED_SLACK

    @pytest.fixture
    def make_store(self) -> MakeStore:
        raise NotImplementedError("subclasses provide a make_store fixture")

    @pytest.fixture
    def store(self, make_store: MakeStore, clock: FakeClock) -> Iterator[Store]:
        s = make_store(clock)
        yield s
        s.close()

    # ------------------------------------------------------------ round trip

    def test_satisfies_store_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert isinstance(store.url, str) and store.url

    def test_w12_put_then_head_shows_metadata(
        self, store: Store, clock: FakeClock, t0: datetime
    ) -> None:
        """W-12: size, creation time, mode, retain-until and hold are visible."""
        now = clock.now()
        info = store.put("docs/a.txt", b"hello", retain_until=t0 + 30 * DAY)
        assert self.created_near(info, now)
        assert info == ObjectInfo(
            name="docs/a.txt",
            size=5,
            retain_until=t0 + 30 * DAY,
            mode=RetentionMode.COMPLIANCE,
            legal_hold=False,
            created=info.created,
        )
        assert store.head("docs/a.txt") == info
        assert info.retain_until.utcoffset() == timedelta(0)
        assert info.created.utcoffset() == timedelta(0)

    def test_w12_governance_mode_and_hold_recorded(self, store: Store, t0: datetime) -> None:
        """W-12: a GOVERNANCE object with a hold reports exactly that."""
        info = store.put(
            "g", b"x", retain_until=t0 + DAY, mode=RetentionMode.GOVERNANCE, legal_hold=True
        )
        assert (info.mode, info.legal_hold) == (RetentionMode.GOVERNANCE, True)
        assert store.head("g") == info

    def test_w11_get_returns_exact_bytes(self, store: Store, t0: datetime) -> None:
        """W-11: the bytes read back hash-equal the bytes written."""
        data = bytes(range(256)) * 17
        store.put("bin/all-bytes", data, retain_until=t0 + DAY)
        assert hashlib.sha256(store.get("bin/all-bytes")).digest() == hashlib.sha256(data).digest()

    def test_exists(self, store: Store, t0: datetime) -> None:
        assert not store.exists("a/b")
        store.put("a/b", b"1", retain_until=t0 + DAY)
        assert store.exists("a/b")
        assert not store.exists("a/c")

    def test_retain_until_is_normalised_to_utc(self, store: Store) -> None:
        plus5 = timezone(timedelta(hours=5))
        when = datetime(2030, 6, 1, 12, 0, 0, 123456, tzinfo=plus5)
        info = store.put("tz", b"x", retain_until=when)
        assert info.retain_until == self.kept(when) >= when
        assert info.retain_until.utcoffset() == timedelta(0)
        assert store.head("tz").retain_until == self.kept(when)

    def test_naive_datetimes_are_rejected(self, store: Store, t0: datetime) -> None:
        with pytest.raises(ValueError, match="naive"):
            store.put("n", b"x", retain_until=datetime(2030, 1, 1))
        store.put("n", b"x", retain_until=t0 + DAY)
        with pytest.raises(ValueError, match="naive"):
            store.extend_retention("n", datetime(2030, 1, 1))

    # ------------------------------------------------------------------ list

    def test_list_is_sorted(self, store: Store, t0: datetime) -> None:
        names = ["b", "a/c/d", "a-b", "a.c", "a/b", "ab", "a/c.x", "A", "0", "a/c-y/z"]
        for n in names:
            store.put(n, n.encode(), retain_until=t0 + DAY)
        assert _names(store) == sorted(names)

    def test_list_prefix(self, store: Store, t0: datetime) -> None:
        names = ["tile/entries/000", "tile/entries/001", "tile/entries.x", "tile/e", "log/1"]
        for n in names:
            store.put(n, n.encode(), retain_until=t0 + DAY)
        assert _names(store, "tile/entries/") == ["tile/entries/000", "tile/entries/001"]
        assert _names(store, "tile/entries") == [
            "tile/entries.x",
            "tile/entries/000",
            "tile/entries/001",
        ]
        assert _names(store, "tile/e") == sorted(n for n in names if n.startswith("tile/e"))
        assert _names(store, "tile/entries/001") == ["tile/entries/001"]
        assert _names(store, "t") == sorted(n for n in names if n.startswith("t"))
        assert _names(store, "nothing/") == []
        assert _names(store, "tile/entries/0019") == []

    def test_list_with_prefixes_no_name_can_have(self, store: Store, t0: datetime) -> None:
        store.put("a/b", b"1", retain_until=t0 + DAY)
        for prefix in ["/", "//", "a//", "../", "a/../", "./a", "a/./", "\x00", "é/", "a\\"]:
            assert _names(store, prefix) == [], prefix

    def test_list_empty_store(self, store: Store) -> None:
        assert _names(store) == []

    # ------------------------------------------------------------ ranged get

    def test_ranged_get(self, store: Store, t0: datetime) -> None:
        data = bytes(range(256)) * 4
        n = len(data)
        store.put("r", data, retain_until=t0 + DAY)
        assert store.get("r") == data
        assert store.get("r", 10) == data[10:]
        assert store.get("r", 10, 5) == data[10:15]
        assert store.get("r", 0, 0) == b""
        assert store.get("r", n - 3, 10) == data[-3:]
        assert store.get("r", n) == b""
        assert store.get("r", n + 100, 5) == b""
        assert store.get("r", length=7) == data[:7]

    def test_ranged_get_rejects_negative_values(self, store: Store, t0: datetime) -> None:
        store.put("r", b"abc", retain_until=t0 + DAY)
        with pytest.raises(BadInput):
            store.get("r", -1)
        with pytest.raises(BadInput):
            store.get("r", 0, -1)

    # ---------------------------------------------------------------- absent

    def test_missing_object_is_not_found(self, store: Store, t0: datetime) -> None:
        store.put("present", b"x", retain_until=t0 + DAY)
        for name in ["absent", "present/child", "pres"]:
            assert not store.exists(name)
            with pytest.raises(NotFound):
                store.head(name)
            with pytest.raises(NotFound):
                store.get(name)
            with pytest.raises(NotFound):
                store.delete(name)
            with pytest.raises(NotFound):
                store.extend_retention(name, t0 + 9 * DAY)
            with pytest.raises(NotFound):
                store.set_legal_hold(name, True)

    # ----------------------------------------------------------- create-only

    def test_w02_f2ib1_no_overwrite_with_different_content(
        self, store: Store, t0: datetime
    ) -> None:
        """W-02 / F2-i-B-1: a second put with other bytes fails; the original is intact."""
        original = store.put("rec", b"original", retain_until=t0 + 30 * DAY)
        with pytest.raises(ObjectExists, match="rec"):
            store.put(
                "rec",
                b"tampered",
                retain_until=t0 + 90 * DAY,
                mode=RetentionMode.GOVERNANCE,
                legal_hold=True,
            )
        with pytest.raises(ObjectExists):
            store.put("rec", b"original+", retain_until=t0 + 30 * DAY)
        with pytest.raises(ObjectExists):
            store.put("rec", b"", retain_until=t0 + 30 * DAY)
        assert store.get("rec") == b"original"
        assert store.head("rec") == original
        assert _names(store) == ["rec"]

    def test_w02_identical_put_is_idempotent(
        self, store: Store, clock: FakeClock, t0: datetime
    ) -> None:
        """W-02: re-putting identical bytes (a retry) changes nothing and returns the info."""
        first = store.put("rec", b"same", retain_until=t0 + 30 * DAY)
        clock.advance(self.SHORT / 2)
        again = store.put("rec", b"same", retain_until=t0 + 30 * DAY)
        assert again == first == store.head("rec")

    def test_w05_identical_put_extends_retention_if_later(self, store: Store, t0: datetime) -> None:
        """W-05: an identical re-put with a later date extends; an earlier one is ignored."""
        store.put("rec", b"same", retain_until=t0 + 30 * DAY)
        assert store.put("rec", b"same", retain_until=t0 + 60 * DAY).retain_until == t0 + 60 * DAY
        assert store.head("rec").retain_until == t0 + 60 * DAY
        assert store.put("rec", b"same", retain_until=t0 + 10 * DAY).retain_until == t0 + 60 * DAY
        assert store.head("rec").retain_until == t0 + 60 * DAY

    def test_f2ib3_identical_put_never_weakens(self, store: Store, t0: datetime) -> None:
        """F2-i-B-3: a retry cannot lower COMPLIANCE or lift a hold."""
        store.put("rec", b"same", retain_until=t0 + 30 * DAY, legal_hold=True)
        info = store.put("rec", b"same", retain_until=t0 + 30 * DAY, mode=RetentionMode.GOVERNANCE)
        assert (info.mode, info.legal_hold) == (RetentionMode.COMPLIANCE, True)
        assert store.head("rec") == info

    def test_identical_put_adds_requested_protection(self, store: Store, t0: datetime) -> None:
        store.put("rec", b"same", retain_until=t0 + DAY, mode=RetentionMode.GOVERNANCE)
        info = store.put("rec", b"same", retain_until=t0 + DAY, legal_hold=True)
        assert (info.mode, info.legal_hold) == (RetentionMode.COMPLIANCE, True)
        assert store.head("rec") == info

    def test_put_after_clash_is_refused_cleanly(self, store: Store, t0: datetime) -> None:
        """Backends mapping names to paths refuse ``a`` beside ``a/b``; nothing changes."""
        if not self.REJECTS_OBJECT_DIRECTORY_CLASH:
            pytest.skip("flat namespace")
        store.put("a", b"file", retain_until=t0 + DAY)
        store.put("c/d", b"nested", retain_until=t0 + DAY)
        store.put("x", b"x", retain_until=t0 + DAY)
        store.put("p.json/q", b"q", retain_until=t0 + DAY)
        for name in ["a/b", "a/b/c", "c", "x.json/y", "p"]:
            with pytest.raises(BadInput):
                store.put(name, b"clash", retain_until=t0 + DAY)
            assert not store.exists(name)
        assert _names(store) == ["a", "c/d", "p.json/q", "x"]
        assert store.get("a") == b"file" and store.get("c/d") == b"nested"

    # ---------------------------------------------------------------- names

    @_fixture_settings
    @given(name=INVALID_NAMES)
    def test_invalid_names_are_rejected(self, store: Store, name: str, t0: datetime) -> None:
        """Names with ``..``, empty segments, stray slashes, unicode or NUL never reach storage."""
        with pytest.raises(BadInput):
            store.put(name, b"x", retain_until=t0 + DAY)
        with pytest.raises(BadInput):
            store.get(name)
        with pytest.raises(BadInput):
            store.head(name)
        with pytest.raises(BadInput):
            store.exists(name)
        with pytest.raises(BadInput):
            store.extend_retention(name, t0 + DAY)
        with pytest.raises(BadInput):
            store.set_legal_hold(name, True)
        with pytest.raises(BadInput):
            store.delete(name)
        assert _names(store) == []

    @pytest.mark.parametrize(
        "name",
        ["", "/", "a/", "/a", "a//b", ".", "..", "a/../b", "../a", "a/./b", "é", "a/b\x00",
         "a\\b", "a b", "abc\n", "a\n/b", "x" * 513, "~", "a:b", "/etc/passwd"],
    )  # fmt: skip
    def test_invalid_name_examples(self, store: Store, name: str, t0: datetime) -> None:
        with pytest.raises(BadInput):
            store.put(name, b"x", retain_until=t0 + DAY)
        assert _names(store) == []

    @_fixture_settings
    @given(name=VALID_NAMES)
    def test_valid_names_round_trip(self, store: Store, name: str, t0: datetime) -> None:
        store.put(name, name.encode(), retain_until=t0 + DAY)
        assert store.exists(name)
        assert store.get(name) == name.encode()
        assert store.head(name).name == name
        assert name in _names(store, name)

    # ------------------------------------------------------------- retention

    def test_w05_extend_retention(self, store: Store, t0: datetime) -> None:
        """W-05: a later retain-until is accepted and reported."""
        store.put("rec", b"x", retain_until=t0 + 30 * DAY)
        info = store.extend_retention("rec", t0 + 365 * DAY)
        assert info.retain_until == t0 + 365 * DAY
        assert store.head("rec") == info

    def test_extend_retention_to_the_same_date_is_a_noop(self, store: Store, t0: datetime) -> None:
        before = store.put("rec", b"x", retain_until=t0 + 30 * DAY)
        assert store.extend_retention("rec", t0 + 30 * DAY) == before
        assert store.head("rec") == before

    def test_w04_f2ib3_shorten_retention_refused(self, store: Store, t0: datetime) -> None:
        """W-04 / F2-i-B-3: an earlier retain-until is refused, naming both dates."""
        until, earlier = t0 + 89 * DAY, t0 + 44 * DAY
        before = store.put("rec", b"x", retain_until=until)
        with pytest.raises(Refused) as e:
            store.extend_retention("rec", earlier)
        assert until.date().isoformat() in e.value.message
        assert earlier.date().isoformat() in e.value.message
        with pytest.raises(Refused):
            store.extend_retention("rec", until - timedelta(seconds=1))
        assert store.head("rec") == before

    def test_w03_f2ib1_delete_refused_before_retain_until(
        self, store: Store, clock: FakeClock, t0: datetime
    ) -> None:
        """W-03 / F2-i-B-1: no delete before retain-until; the message names it."""
        until = t0 + self.SHORT
        store.put("rec", b"x", retain_until=until)
        with pytest.raises(Refused) as e:
            store.delete("rec")
        assert "rec" in e.value.message and until.date().isoformat() in e.value.message
        if not isinstance(clock, RealClock):  # (real time cannot be held just before it)
            clock.set(until - timedelta(microseconds=1))
            with pytest.raises(Refused):
                store.delete("rec")
        assert store.get("rec") == b"x"

    def test_delete_allowed_at_retain_until(
        self, store: Store, clock: FakeClock, t0: datetime
    ) -> None:
        store.put("dir/rec", b"x", retain_until=t0 + self.SHORT)
        store.put("dir/other", b"y", retain_until=t0 + 30 * DAY)
        clock.set(t0 + self.SHORT)
        store.delete("dir/rec")
        assert not store.exists("dir/rec")
        with pytest.raises(NotFound):
            store.head("dir/rec")
        with pytest.raises(NotFound):
            store.get("dir/rec")
        assert _names(store) == ["dir/other"]

    def test_name_can_be_reused_after_delete(
        self, store: Store, clock: FakeClock, t0: datetime
    ) -> None:
        store.put("rec", b"old", retain_until=t0 + self.SHORT)
        clock.set(t0 + self.SHORT)
        store.delete("rec")
        now = clock.now()
        info = store.put("rec", b"new", retain_until=t0 + 9 * DAY)
        assert store.get("rec") == b"new"
        assert self.created_near(info, now) and store.head("rec") == info

    def test_w14_governance_mode_has_no_bypass(
        self, store: Store, clock: FakeClock, t0: datetime
    ) -> None:
        """W-14: there is no privileged delete; GOVERNANCE objects wait for retain-until too."""
        until = t0 + self.SHORT
        store.put("rec", b"x", retain_until=until, mode=RetentionMode.GOVERNANCE)
        with pytest.raises(Refused):
            store.delete("rec")
        with pytest.raises(Refused):
            store.extend_retention("rec", until - timedelta(seconds=1))
        clock.set(until)
        store.delete("rec")

    def test_w13_retention_uses_the_injected_clock(self, store: Store, clock: FakeClock) -> None:
        """W-13: expiry follows the injected (compliance) clock, never the host clock.

        The clock itself is hardened elsewhere (F2-i-B-6); here the host clock is far
        past retain-until, yet the store refuses until the injected clock gets there.
        """
        if isinstance(clock, RealClock):
            pytest.skip("S3 expires objects by its own clock; the expiry tests wait for it")
        clock.set(datetime(2000, 1, 1, tzinfo=UTC))
        store.put("old", b"x", retain_until=datetime(2001, 1, 1, tzinfo=UTC))
        with pytest.raises(Refused):
            store.delete("old")
        clock.set(datetime(2001, 1, 1, tzinfo=UTC))
        store.delete("old")

    # ------------------------------------------------------------ legal hold

    def test_legal_hold_set_and_clear(self, store: Store, t0: datetime) -> None:
        store.put("rec", b"x", retain_until=t0 + DAY)
        assert store.set_legal_hold("rec", True).legal_hold
        assert store.set_legal_hold("rec", True).legal_hold
        assert store.head("rec").legal_hold
        assert not store.set_legal_hold("rec", False).legal_hold
        assert not store.head("rec").legal_hold
        assert store.head("rec").retain_until == t0 + DAY

    def test_w06_hold_blocks_delete_after_expiry(
        self, store: Store, clock: FakeClock, t0: datetime
    ) -> None:
        """W-06: a held object cannot be deleted even after retain-until."""
        store.put("rec", b"x", retain_until=t0 + self.SHORT)
        store.set_legal_hold("rec", True)
        clock.set(t0 + self.SHORT)
        with pytest.raises(Refused, match="hold"):
            store.delete("rec")
        assert store.exists("rec")
        store.set_legal_hold("rec", False)  # (lets a real server's test data expire)

    def test_w07_release_hold_after_expiry_allows_delete(
        self, store: Store, clock: FakeClock, t0: datetime
    ) -> None:
        """W-07: once the hold is released after expiry, delete succeeds."""
        store.put("rec", b"x", retain_until=t0 + self.SHORT, legal_hold=True)
        clock.set(t0 + self.SHORT)
        with pytest.raises(Refused):
            store.delete("rec")
        store.set_legal_hold("rec", False)
        store.delete("rec")
        assert not store.exists("rec")

    def test_hold_and_retention_are_independent(
        self, store: Store, clock: FakeClock, t0: datetime
    ) -> None:
        """F2-i-B-4: releasing a hold before expiry does not make the object deletable."""
        store.put("rec", b"x", retain_until=t0 + self.SHORT, legal_hold=True)
        assert store.extend_retention("rec", t0 + 3 * self.SHORT).legal_hold
        store.set_legal_hold("rec", False)
        clock.set(t0 + 2 * self.SHORT)
        with pytest.raises(Refused, match="retained until"):
            store.delete("rec")

    # ----------------------------------------------------------------- sizes

    def test_empty_object(self, store: Store, t0: datetime) -> None:
        info = store.put("empty", b"", retain_until=t0 + DAY)
        assert info.size == 0 and store.head("empty").size == 0
        assert store.get("empty") == b""
        assert store.get("empty", 0, 10) == b""
        assert store.put("empty", b"", retain_until=t0 + DAY) == info
        assert _names(store) == ["empty"]

    def test_ten_mib_object(self, store: Store, t0: datetime) -> None:
        data = random.Random(17).randbytes(10 * MIB)
        info = store.put("big/blob", data, retain_until=t0 + DAY)
        assert info.size == 10 * MIB == store.head("big/blob").size
        assert store.get("big/blob") == data
        assert store.get("big/blob", 5 * MIB + 3, 1000) == data[5 * MIB + 3 : 5 * MIB + 1003]
        assert store.put("big/blob", data, retain_until=t0 + DAY) == info
        with pytest.raises(ObjectExists):
            store.put("big/blob", data[:-1] + bytes([data[-1] ^ 1]), retain_until=t0 + DAY)
        assert store.get("big/blob", 10 * MIB - 1) == data[-1:]
