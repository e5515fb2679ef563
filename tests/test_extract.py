"""What the catalog learns from raw bytes: total on any input, bounded, and right on the
chat shapes connectors deliver (ARCHITECTURE.md "Records": bad input is kept, flagged)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from strongroom.core.extract import MAX_FIELD, MAX_PARTICIPANTS, extract

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20,
)
chat_keys = st.sampled_from(
    ["message", "text", "user", "from", "to", "recipients", "channel", "subject", "x"]
)


@given(st.binary(max_size=2000), st.sampled_from(["chat", "chat.mm", "file", "email"]))
def test_total_on_any_bytes(data: bytes, record_class: str) -> None:
    x = extract(record_class, "f.bin", data, truncated=False)
    assert isinstance(x.body, str) and isinstance(x.subject, str)
    assert len(x.participants) <= MAX_PARTICIPANTS


@given(st.dictionaries(chat_keys, json_values, max_size=6))
def test_chat_objects_of_any_shape(obj: dict[str, object]) -> None:
    x = extract("chat", "", json.dumps(obj).encode(), truncated=False)
    assert "unparsed" not in x.flags
    assert all(role in ("from", "to") and addr for role, addr in x.participants)
    assert len([p for p in x.participants if p[0] == "from"]) <= 1
    assert ("no-text" in x.flags) == (x.body == "")


def test_chat_fields() -> None:
    msg = {
        "user": "ann@example.com",
        "to": ["bob@example.com", "", 7, None],
        "channel": "#desk",
        "text": "buy 100",
        "message": "first body key wins",
    }
    x = extract("chat", "m.json", json.dumps(msg).encode(), truncated=False)
    assert x.body == "first body key wins" and x.subject == "#desk"
    assert x.participants == (("from", "ann@example.com"), ("to", "bob@example.com"), ("to", "7"))
    assert x.flags == ()


def test_hostile_chat_is_bounded_and_flagged() -> None:
    many = {"text": "x" * (MAX_FIELD * 2), "to": [f"u{i}" for i in range(5000)]}
    x = extract("chat", "", json.dumps(many).encode(), truncated=False)
    assert len(x.body) == MAX_FIELD and len(x.participants) == MAX_PARTICIPANTS
    deep = b"[" * 100_000 + b"]" * 100_000
    bad = extract("chat", "", deep, truncated=False)
    assert bad.flags == ("unparsed",) and bad.error
    assert extract("chat", "", b"{oops", truncated=False).flags == ("unparsed",)
    assert extract("chat", "", b"[1]", truncated=False).error == "not a JSON object"
    assert extract("file", "", b"\x00\x01binary", truncated=False).flags == ("binary",)


@given(
    st.dictionaries(chat_keys, json_values, max_size=6),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"]),
)
def test_chat_json_in_every_encoding_json_accepts(obj: dict[str, object], codec: str) -> None:
    """A chat message is parsed whatever encoding JSON allows (RFC 8259 §8.1 names UTF-8;
    json.loads also detects a BOM, UTF-16 and UTF-32): the same fields as from UTF-8."""
    text = json.dumps(obj, ensure_ascii=False)
    expected = extract("chat", "", text.encode("utf-8", "surrogatepass"), truncated=False)
    if "unparsed" in expected.flags:  # lone surrogates: no strict encoding holds them
        return
    got = extract("chat", "", text.encode(codec), truncated=False)
    assert (got.body, got.subject, got.participants) == (
        expected.body,
        expected.subject,
        expected.participants,
    )
    assert "unparsed" not in got.flags
