"""Record ids: the ULID layout (github.com/ulid/spec), checked against a plain
reference built from the standard library's base32."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from strongroom.core import ids

_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ids._CROCKFORD)


def reference(now: datetime, tail: bytes) -> str:
    ms = int(now.timestamp() * 1000)
    head = "".join(ids._CROCKFORD[(ms >> (5 * i)) & 31] for i in range(9, -1, -1))
    return head + base64.b32encode(tail).decode().translate(_TO_CROCKFORD)


@given(
    now=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
    tail=st.binary(min_size=10, max_size=10),
)
def test_new_id_is_ulid(now: datetime, tail: bytes) -> None:
    with mock.patch("strongroom.core.ids.os.urandom", lambda n: tail):
        rid = ids.new_id(now)
    assert rid == reference(now, tail)
    assert len(rid) == 26 and set(rid) <= set(ids._CROCKFORD)


def test_ids_sort_by_time_and_differ() -> None:
    a = ids.new_id(datetime(2026, 1, 1, tzinfo=UTC))
    b = ids.new_id(datetime(2026, 1, 1, 0, 0, 0, 1000, tzinfo=UTC))
    assert a[:10] < b[:10]
    same = {ids.new_id(datetime(2026, 1, 1, tzinfo=UTC)) for _ in range(1000)}
    assert len(same) == 1000
