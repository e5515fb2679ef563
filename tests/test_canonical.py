"""Our JCS fast path equals the reference RFC 8785 implementation (rfc8785) on entry values."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from strongroom.core.canonical import canonical_json
from strongroom.core.entries import EntryType, decode_entry, encode_entry
from strongroom.errors import BadInput

keys = st.text(st.characters(codec="ascii"), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
)
values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=5) | st.dictionaries(keys, c, max_size=5), max_leaves=30
)


@given(values)
def test_matches_rfc8785(v: object) -> None:
    assert canonical_json(v) == rfc8785.dumps(v)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1.5, 2**60, {1: "x"}, {"é": 1}, "\ud800"])
def test_rejects_values_outside_the_profile(bad: object) -> None:
    with pytest.raises(ValueError):
        canonical_json(bad)


@given(st.dictionaries(st.sampled_from(["record", "n", "list", "text"]), values, max_size=4))
def test_entries_round_trip_and_refuse_non_canonical(fields: dict[str, object]) -> None:
    from datetime import UTC, datetime

    data = encode_entry(EntryType.ACCESS, datetime(2026, 1, 1, tzinfo=UTC), "user:x", fields)
    e = decode_entry(data)
    assert dict(e.fields) == fields and e.actor == "user:x"
    with pytest.raises(BadInput):
        decode_entry(data.replace(b"{", b"{ ", 1))
