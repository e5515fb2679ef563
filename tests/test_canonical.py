"""Our JCS fast path equals the reference RFC 8785 implementation (rfc8785) on entry values."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from strongroom.core.canonical import canonical_json
from strongroom.core.entries import EntryType, RecordEncoder, decode_entry, encode_entry
from strongroom.core.retention import format_time
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

    data = encode_entry(EntryType.ACCESS, datetime(2026, 1, 1, tzinfo=UTC), "user:x", fields)
    e = decode_entry(data)
    assert dict(e.fields) == fields and e.actor == "user:x"
    with pytest.raises(BadInput):
        decode_entry(data.replace(b"{", b"{ ", 1))


free_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
ints = st.integers(0, 2**53 - 1)
times = st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC))


@given(
    actor=free_text,
    record_class=free_text,
    rule=free_text,
    flags=st.lists(free_text, max_size=3),
    at=times,
    until=times,
    size=ints,
    chunk=st.none() | st.tuples(ints, ints, ints, hex64),
    sha=hex64,
    key=hex64,
    sealed=st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
)
def test_record_encoder_equals_the_general_encoder(
    actor: str,
    record_class: str,
    rule: str,
    flags: list[str],
    at: datetime,
    until: datetime,
    size: int,
    chunk: tuple[int, int, int, str] | None,
    sha: str,
    key: str,
    sealed: str,
) -> None:
    """The template encoder of one-chunk record.append entries (the small-record hot
    path) gives the canonical bytes, byte for byte."""
    pack = "packs/2031-04/0123456789abcdef0123456789abcdef"
    manifest: dict[str, object] = {"packs": [], "chunks": []}
    if chunk is not None:
        manifest = {"packs": [pack], "chunks": [[0, *chunk]]}
    fields = {
        "record": "01JDAAAAAAAAAAAAAAAAAAAAAA",
        "class": record_class,
        "sha256": sha,
        "size": size,
        "retain_until": format_time(until),
        "rule": rule,
        "source_key": key,
        "manifest": manifest,
        "packs": manifest["packs"],
        "flags": sorted(flags),
        "sealed": sealed,
    }
    enc = RecordEncoder(actor, record_class, rule, format_time(until), flags)
    fast = enc.encode(format_time(at), fields)
    assert fast == encode_entry(EntryType.RECORD_APPEND, at, actor, fields)
    assert decode_entry(fast).fields["manifest"] == manifest
