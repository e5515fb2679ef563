"""Tests for strongroom.core.checkpoint: C2SP tlog-checkpoint in C2SP signed notes.

Specs: https://c2sp.org/tlog-checkpoint and https://c2sp.org/signed-note (Ed25519).
Known-answer vectors: the PeterNeumann key and note from the package documentation
and tests of Go's golang.org/x/mod/sumdb/note, and the example of the signed-note
specification (example.com/foo).

Requirement: F2-i-A-4 (hash-chained audit log with signed checkpoints).
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.core.checkpoint import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    MAX_TREE_SIZE,
    Checkpoint,
    key_id,
    open_note,
    parse_body,
    parse_vkey,
    sign,
    sign_note,
    verify_note,
    vkey,
)
from strongroom.core.merkle import EMPTY_ROOT
from strongroom.errors import BadInput

PROPERTY = settings(derandomize=bool(os.environ.get("CI")), deadline=None, max_examples=100)

ORIGIN = "archive.example/strongroom"
ROOT = hashlib.sha256(b"some root").digest()
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
TRUSTED = [(ORIGIN, KEY.public_key())]

# golang.org/x/mod/sumdb/note: package documentation and note_test.go.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
PETER_NOTE = (
    PETER_TEXT
    + (
        "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
        "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    ).encode()
)
# c2sp.org/signed-note example.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq"
    "6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()


def _cp(size: int = 42, extensions: tuple[str, ...] = ()) -> Checkpoint:
    return Checkpoint(ORIGIN, size, ROOT, extensions)


def _sign_text(text: str, key: Ed25519PrivateKey = KEY, name: str = ORIGIN) -> bytes:
    return sign_note(text.encode(), name, key)


def _root_b64(root: bytes = ROOT) -> str:
    return base64.b64encode(root).decode()


# -------------------------------------------------------------------- round trips


def test_body_format() -> None:
    """tlog-checkpoint: origin, decimal size, base64 root, extensions, each + newline."""
    cp = _cp(20852163, ("ext one", "ext two"))
    assert cp.body() == f"{ORIGIN}\n20852163\n{_root_b64()}\next one\next two\n".encode()
    assert Checkpoint(ORIGIN, 0, EMPTY_ROOT).body() == (
        f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n".encode()
    )


def test_sign_open_round_trip() -> None:
    """F2-i-A-4: a signed checkpoint opens to the same checkpoint with the right key."""
    for cp in (_cp(), _cp(0), _cp(MAX_TREE_SIZE, ("x",))):
        note = sign(cp, ORIGIN, KEY)
        key_hash = key_id(ORIGIN, KEY.public_key())
        assert note.startswith(cp.body() + "\n\u2014 ".encode())
        assert note.endswith(b"\n")
        sig_line = note[len(cp.body()) + 1 :].decode()
        name, sig_b64 = sig_line[2:-1].split(" ")
        assert name == ORIGIN
        assert base64.b64decode(sig_b64)[:4] == key_hash
        assert len(base64.b64decode(sig_b64)) == 4 + 64
        assert open_note(note, TRUSTED) == cp
        assert open_note(note, TRUSTED, origin=ORIGIN) == cp


@PROPERTY
@given(
    st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1, max_size=40),
    st.integers(0, MAX_TREE_SIZE),
    st.binary(min_size=32, max_size=32),
    st.lists(
        st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1),
        max_size=3,
    ),
)
def test_round_trip_property(origin: str, size: int, root: bytes, ext: list[str]) -> None:
    """Any valid checkpoint survives sign → open unchanged."""
    cp = Checkpoint(origin, size, root, tuple(ext))
    assert open_note(sign(cp, ORIGIN, KEY), TRUSTED) == cp
    assert parse_body(cp.body()) == cp


def test_vkey_round_trip() -> None:
    text = vkey(ORIGIN, KEY.public_key())
    name, kid, public_key = parse_vkey(text)
    assert name == ORIGIN
    assert kid == key_id(ORIGIN, KEY.public_key())
    assert public_key.public_bytes_raw() == KEY.public_key().public_bytes_raw()
    assert (
        text
        == f"{ORIGIN}+{kid.hex()}+"
        + base64.b64encode(b"\x01" + KEY.public_key().public_bytes_raw()).decode()
    )


def test_key_id_known_answer() -> None:
    """signed-note: key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4].

    Checked against Go's sumdb/note vkey for PeterNeumann (key ID c74f20a3) and the
    signed-note spec's example key (530d903a), and against the formula directly.
    """
    for text, name, hex_id in (
        (PETER_VKEY, "PeterNeumann", "c74f20a3"),
        (SPEC_VKEY, "example.com/foo", "530d903a"),
    ):
        parsed_name, kid, public_key = parse_vkey(text)
        assert (parsed_name, kid.hex()) == (name, hex_id)
        assert key_id(name, public_key).hex() == hex_id
        assert vkey(name, public_key) == text
    raw = KEY.public_key().public_bytes_raw()
    want = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
    assert key_id(ORIGIN, KEY.public_key()) == want


def test_signature_known_answer() -> None:
    """Ed25519 is deterministic: signing Go's example text reproduces its exact note."""
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert seed[0] == 0x01
    key = Ed25519PrivateKey.from_private_bytes(seed[1:])
    assert vkey("PeterNeumann", key.public_key()) == PETER_VKEY
    assert sign_note(PETER_TEXT, "PeterNeumann", key) == PETER_NOTE
    name, _, public_key = parse_vkey(PETER_VKEY)
    assert verify_note(PETER_NOTE, [(name, public_key)]) == PETER_TEXT
    name, _, public_key = parse_vkey(SPEC_VKEY)
    assert verify_note(SPEC_NOTE, [(name, public_key)]) == b"This is an example message.\n"


# --------------------------------------------------------------------- rejections


def test_wrong_key_rejected() -> None:
    """F2-i-A-4: a checkpoint signed by anyone else is not accepted."""
    note = sign(_cp(), ORIGIN, OTHER)  # same name, different key: ignored, so unsigned
    with pytest.raises(BadInput, match="not signed by any trusted key"):
        open_note(note, TRUSTED)
    with pytest.raises(BadInput, match="not signed by any trusted key"):
        open_note(sign(_cp(), "someone.else", KEY), TRUSTED)


def test_tampered_body_rejected() -> None:
    """F2-i-A-4: changing the size or root of a signed checkpoint breaks the signature."""
    note = sign(_cp(42), ORIGIN, KEY)
    for bad in (
        note.replace(b"\n42\n", b"\n43\n"),
        note.replace(_root_b64().encode(), _root_b64(EMPTY_ROOT).encode()),
        note.replace(ORIGIN.encode() + b"\n", b"evil.example/log\n", 1),
    ):
        assert bad != note
        with pytest.raises(BadInput, match="does not verify"):
            open_note(bad, TRUSTED)


def test_tampered_signature_rejected() -> None:
    note = sign(_cp(), ORIGIN, KEY)
    body, sig_line = note.split(b"\n\n")
    name, sig_b64 = sig_line.decode()[2:-1].split(" ")
    raw = bytearray(base64.b64decode(sig_b64))
    raw[10] ^= 0x01
    bad = body + b"\n\n" + f"\u2014 {name} {base64.b64encode(raw).decode()}\n".encode()
    with pytest.raises(BadInput, match="does not verify"):
        open_note(bad, TRUSTED)
    short = body + b"\n\n" + f"\u2014 {name} {base64.b64encode(raw[:40]).decode()}\n".encode()
    with pytest.raises(BadInput, match="36 bytes, expected 64"):
        open_note(short, TRUSTED)


@PROPERTY
@given(st.data())
def test_any_single_byte_change_rejected(data: st.DataObject) -> None:
    """Every one-byte change anywhere in a signed note makes it unacceptable."""
    note = sign(_cp(), ORIGIN, KEY)
    pos = data.draw(st.integers(0, len(note) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != note[pos]))
    bad = note[:pos] + bytes([value]) + note[pos + 1 :]
    with pytest.raises(BadInput):
        open_note(bad, TRUSTED)


def test_missing_signature_rejected() -> None:
    body = _cp().body()
    with pytest.raises(BadInput, match="no blank line"):
        open_note(body, TRUSTED)
    with pytest.raises(BadInput, match="no signature lines"):
        open_note(body + b"\n", TRUSTED)
    with pytest.raises(BadInput, match="does not end with a newline"):
        open_note(sign(_cp(), ORIGIN, KEY)[:-1], TRUSTED)
    with pytest.raises(BadInput, match="em dash"):
        open_note(body + b"\n- " + ORIGIN.encode() + b" AAAA\n", TRUSTED)
    with pytest.raises(BadInput, match="no signature"):
        open_note(body + "\n\u2014 name\n".encode(), TRUSTED)
    with pytest.raises(BadInput, match="not valid base64"):
        open_note(body + "\n\u2014 name !!!!\n".encode(), TRUSTED)
    with pytest.raises(BadInput, match="too short"):
        open_note(body + "\n\u2014 name AAAAAA==\n".encode(), TRUSTED)
    with pytest.raises(BadInput, match="contains '\\+'"):
        open_note(body + "\n\u2014 a+b AAAAAAAA\n".encode(), TRUSTED)


def test_crlf_and_encoding_rejected() -> None:
    note = sign(_cp(), ORIGIN, KEY)
    with pytest.raises(BadInput, match="carriage return"):
        open_note(note.replace(b"\n", b"\r\n"), TRUSTED)
    with pytest.raises(BadInput, match="control character"):
        open_note(note.replace(b"\n42", b"\n\t42"), TRUSTED)
    with pytest.raises(BadInput, match="UTF-8"):
        open_note(b"\xff" + note, TRUSTED)


@pytest.mark.parametrize(
    ("size_text", "message"),
    [
        ("042", "leading zeros"),
        ("00", "leading zeros"),
        ("-1", "not a decimal"),
        ("+1", "not a decimal"),
        ("4x", "not a decimal"),
        ("", "not a decimal"),
        (" 1", "not a decimal"),
        ("1.0", "not a decimal"),
        ("\u0661", "not a decimal"),  # a non-ASCII digit
        (str(MAX_TREE_SIZE + 1), "does not fit in 64 bits"),
        ("9" * 25, "not a decimal"),
    ],
)
def test_bad_size_rejected(size_text: str, message: str) -> None:
    """tlog-checkpoint: size is ASCII decimal without leading zeros, even if signed."""
    note = _sign_text(f"{ORIGIN}\n{size_text}\n{_root_b64()}\n")
    with pytest.raises(BadInput, match=message):
        open_note(note, TRUSTED)


@pytest.mark.parametrize(
    ("root_text", "message"),
    [
        (base64.b64encode(b"\x01" * 31).decode(), "31 bytes, expected 32"),
        (base64.b64encode(b"\x01" * 33).decode(), "33 bytes, expected 32"),
        ("", "0 bytes"),
        (_root_b64().rstrip("="), "not valid base64"),
        (_root_b64()[:-2] + "V=", "not canonical"),  # non-zero padding bits
        (ROOT.hex(), "48 bytes, expected 32"),
        ("_" * 43 + "=", "not valid base64"),  # URL-safe alphabet
    ],
)
def test_bad_root_rejected(root_text: str, message: str) -> None:
    note = _sign_text(f"{ORIGIN}\n42\n{root_text}\n")
    with pytest.raises(BadInput, match=message):
        open_note(note, TRUSTED)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{ORIGIN}\n42\n", "2 lines"),
        (f"\n42\n{_root_b64()}\n", "origin line is empty"),
        (f"{ORIGIN}\n42\n{_root_b64()}\n\nafter-empty\n", "extension line 1 is empty"),
    ],
)
def test_bad_body_rejected(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        open_note(_sign_text(text), TRUSTED)


def test_oversize_note_rejected() -> None:
    """Notes are bounded (1 MiB) before any parsing or signature work."""
    big = _cp(extensions=("x" * MAX_NOTE_SIZE,))
    with pytest.raises(BadInput, match="the limit is"):
        open_note(sign(big, ORIGIN, KEY), TRUSTED)


def test_signature_line_limit() -> None:
    """signed-note: accept at least 16 signatures; reject more than MAX_SIGNATURES."""
    note = sign(_cp(), ORIGIN, KEY)
    others = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in range(2, 18)]
    lines = b"".join(
        sign(_cp(), f"witness{i}.example", k).split(b"\n\n")[1] for i, k in enumerate(others)
    )
    assert open_note(note + lines, TRUSTED) == _cp()  # 17 signatures, 16 unknown
    unknown = sign(_cp(), "unknown.example", OTHER).split(b"\n\n")[1]
    with pytest.raises(BadInput, match="signature lines; the limit is"):
        open_note(note + unknown * MAX_SIGNATURES, TRUSTED)


def test_unknown_signers_ignored_and_trusted_bad_signature_rejects() -> None:
    """signed-note: ignore unknown keys; a failing signature by a known key rejects."""
    cp = _cp()
    note = sign(cp, ORIGIN, KEY)
    extra = sign(cp, "witness.example", OTHER).split(b"\n\n")[1]
    assert open_note(note + extra, TRUSTED) == cp
    assert open_note(note + note.split(b"\n\n")[1], TRUSTED) == cp  # repeated signature
    both = [*TRUSTED, ("witness.example", OTHER.public_key())]
    assert open_note(note + extra, both) == cp
    # A second signature line claiming a trusted key but over other text.
    forged = sign(_cp(43), ORIGIN, KEY).split(b"\n\n")[1]
    witness_only = sign(cp, "witness.example", OTHER)
    with pytest.raises(BadInput, match="does not verify"):
        open_note(witness_only + forged, both)


def test_origin_mismatch_rejected() -> None:
    note = sign(Checkpoint("other.example/log", 1, ROOT), ORIGIN, KEY)
    with pytest.raises(BadInput, match="not the expected"):
        open_note(note, TRUSTED, origin=ORIGIN)


@pytest.mark.parametrize(
    "text",
    [
        "PeterNeumann+c74f20a3",
        "PeterNeumann",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+AhpjZHBvUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
        "PeterNeumann+c74f20a3+",
    ],
)
def test_parse_vkey_rejects(text: str) -> None:
    with pytest.raises(BadInput, match="verifier key"):
        parse_vkey(text)


def test_checkpoint_construction_checks() -> None:
    """Programmer errors (building an invalid checkpoint) are ValueError, not BadInput."""
    with pytest.raises(ValueError, match="origin"):
        Checkpoint("", 1, ROOT)
    with pytest.raises(ValueError, match="origin"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(ValueError, match="size"):
        Checkpoint(ORIGIN, -1, ROOT)
    with pytest.raises(ValueError, match="size"):
        Checkpoint(ORIGIN, MAX_TREE_SIZE + 1, ROOT)
    with pytest.raises(ValueError, match="32 bytes"):
        Checkpoint(ORIGIN, 1, ROOT[:31])
    with pytest.raises(ValueError, match="extension"):
        Checkpoint(ORIGIN, 1, ROOT, ("",))
    with pytest.raises(ValueError, match="key name"):
        sign(_cp(), "bad name", KEY)
    with pytest.raises(ValueError, match="key name"):
        key_id("a+b", KEY.public_key())
    with pytest.raises(ValueError, match="end in newline"):
        sign_note(b"no newline", ORIGIN, KEY)
