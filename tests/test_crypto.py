"""Tests for strongroom.crypto: keys, KDF, key files and the envelope format."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Literal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.crypto import (
    ENVELOPE_MAGIC,
    KIND_DATA_KEY,
    KIND_SIGNING_KEY,
    NONCE_SIZE,
    TAG_SIZE,
    ChunkHasher,
    DataKey,
    EnvelopeHeader,
    KdfParams,
    Keyring,
    MasterKey,
    derive_master_key,
    generate_signing_key,
    load_key_file,
    new_key_file_text,
    open_envelope,
    parse_header,
    public_key_bytes,
    seal,
    unwrap_data_key,
    unwrap_signing_key,
    wrap_data_key,
    wrap_signing_key,
)
from strongroom.errors import AuthError, BadInput, CorruptVault, NotFound

PRINTABLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
labels = st.text(PRINTABLE, min_size=1, max_size=255)

# One data key for the whole module: hypothesis examples must not depend on fixtures.
DK1 = DataKey.generate("dk-0001")


@pytest.fixture(scope="module")
def test_params() -> KdfParams:
    return KdfParams.new("test")


@pytest.fixture(scope="module")
def master(test_params: KdfParams) -> MasterKey:
    return derive_master_key("correct horse battery staple", test_params)


# ------------------------------------------------------------------ envelopes


@given(plaintext=st.binary(max_size=4096), kind=labels, context=st.binary(max_size=300))
def test_seal_open_round_trip(plaintext: bytes, kind: str, context: bytes) -> None:
    env = seal(DK1, plaintext, kind=kind, context=context)
    assert open_envelope(DK1, env, kind=kind, context=context) == plaintext
    assert open_envelope(Keyring([DK1]), memoryview(env), kind=kind, context=context) == plaintext
    assert len(env) == 5 + 1 + 1 + len(kind) + 1 + 7 + NONCE_SIZE + len(plaintext) + TAG_SIZE


def test_layout_is_as_documented() -> None:
    env = seal(DK1, b"hello", kind="chunk", context=b"obj/1")
    assert env[:5] == b"SRENV"
    assert env[5] == 1
    assert env[6] == 5
    assert env[7:12] == b"chunk"
    assert env[12] == 7
    assert env[13:20] == b"dk-0001"
    header = parse_header(env)
    assert header == EnvelopeHeader(1, "chunk", "dk-0001", env[20:32], 32)
    assert len(env) == 32 + 5 + TAG_SIZE
    # An independent reader using only the documented layout can decrypt it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aad = env[:32] + b"obj/1"
    assert AESGCM(DK1.key).decrypt(env[20:32], env[32:], aad) == b"hello"


def test_nonces_are_fresh() -> None:
    a = seal(DK1, b"same", kind="chunk")
    b = seal(DK1, b"same", kind="chunk")
    assert parse_header(a).nonce != parse_header(b).nonce
    assert a != b


_TAMPER_ENV = seal(DK1, b"record content " * 20, kind="chunk", context=b"records/a/1")


@given(pos=st.integers(0, len(_TAMPER_ENV) - 1), flip=st.integers(1, 255))
def test_any_single_byte_change_is_detected(pos: int, flip: int) -> None:
    bad = bytearray(_TAMPER_ENV)
    bad[pos] ^= flip
    for opener in (DK1, Keyring([DK1])):
        with pytest.raises(CorruptVault):
            open_envelope(opener, bytes(bad), kind="chunk", context=b"records/a/1")


def test_truncation_and_extension_detected() -> None:
    for n in range(len(_TAMPER_ENV)):
        with pytest.raises(CorruptVault):
            open_envelope(DK1, _TAMPER_ENV[:n], kind="chunk", context=b"records/a/1")
    with pytest.raises(CorruptVault):
        open_envelope(DK1, _TAMPER_ENV + b"\0", kind="chunk", context=b"records/a/1")


def test_key_id_swapped_to_another_known_key_fails() -> None:
    dk2 = DataKey.generate("dk-0002")
    env = seal(DK1, b"x", kind="chunk")
    swapped = env.replace(b"dk-0001", b"dk-0002", 1)
    with pytest.raises(CorruptVault, match="authentication failed: altered or wrong key"):
        open_envelope(Keyring([DK1, dk2]), swapped, kind="chunk")


@given(context=st.binary(max_size=64), other=st.binary(max_size=64))
def test_moved_blob_fails(context: bytes, other: bytes) -> None:
    env = seal(DK1, b"payload", kind="chunk", context=context)
    if other != context:
        with pytest.raises(CorruptVault, match="authentication failed"):
            open_envelope(DK1, env, kind="chunk", context=other)


def test_wrong_kind_and_wrong_key_rejected() -> None:
    env = seal(DK1, b"payload", kind="chunk")
    with pytest.raises(CorruptVault, match="expected a 'manifest'"):
        open_envelope(DK1, env, kind="manifest")
    other = DataKey("dk-0001", DataKey.generate("dk-0009").key)  # same id, other bytes
    with pytest.raises(CorruptVault, match="authentication failed: altered or wrong key"):
        open_envelope(other, env, kind="chunk")
    with pytest.raises(CorruptVault, match="sealed under 'dk-0001'"):
        open_envelope(DataKey.generate("dk-0002"), env, kind="chunk")


def test_unknown_magic_and_version() -> None:
    env = seal(DK1, b"payload", kind="chunk")
    for data in (b"", b"SREN", b"PK\x03\x04" + env[4:], b"XRENV" + env[5:]):
        with pytest.raises(CorruptVault, match="not a Strongroom envelope"):
            parse_header(data)
    future = env[:5] + bytes([2]) + env[6:]
    with pytest.raises(CorruptVault, match="unknown envelope format version 2"):
        open_envelope(DK1, future, kind="chunk")
    with pytest.raises(CorruptVault, match="truncated"):
        parse_header(ENVELOPE_MAGIC)


def test_bad_labels_are_programming_errors() -> None:
    for kind in ("", "has space", "é", "x" * 256):
        with pytest.raises(ValueError, match="printable ASCII"):
            seal(DK1, b"", kind=kind)


def test_large_payload_round_trip() -> None:
    payload = bytes(range(256)) * (4 * 4096)  # 4 MiB
    env = seal(DK1, memoryview(payload), kind="chunk", context=b"c")
    assert open_envelope(DK1, env, kind="chunk", context=b"c") == payload


# --------------------------------------------------------------- master key / KDF


def test_wrong_passphrase_is_auth_error(master: MasterKey, test_params: KdfParams) -> None:
    stored_check = master.check_value()
    wrapped = wrap_data_key(master, DK1)
    wrong = derive_master_key("correct horse battery stapler", test_params)
    with pytest.raises(AuthError):
        wrong.verify_check_value(stored_check)
    with pytest.raises(AuthError):
        unwrap_data_key(wrong, wrapped)
    master.verify_check_value(stored_check)
    assert unwrap_data_key(master, wrapped).key == DK1.key


def test_passphrase_is_nfc_normalised(test_params: KdfParams) -> None:
    composed = derive_master_key("caf\u00e9", test_params)
    decomposed = derive_master_key("cafe\u0301", test_params)
    assert composed.key == decomposed.key
    assert derive_master_key("cafe", test_params).key != composed.key


def test_empty_or_invalid_passphrase_is_bad_input(test_params: KdfParams) -> None:
    with pytest.raises(BadInput, match="empty"):
        derive_master_key("", test_params)
    with pytest.raises(BadInput, match="not valid Unicode") as info:
        derive_master_key("ab\udc80", test_params)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_same_params_same_key_different_salt_different_key(test_params: KdfParams) -> None:
    a = derive_master_key("pw", test_params)
    b = derive_master_key("pw", KdfParams.from_json(test_params.to_json()))
    c = derive_master_key("pw", KdfParams.new("test"))
    assert a.key == b.key != c.key


def test_subkeys_are_distinct(master: MasterKey) -> None:
    values = {
        master.check_value(),
        master.chunk_hasher().key,
        master.derive(b"strongroom wrap-key v1"),
        master.key,
    }
    assert len(values) == 4
    assert len(master.check_value()) == 32
    # Open-reader check: the wrap key is HKDF-SHA256(master, salt=none, info=label).
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    wrap_key = HKDF(hashes.SHA256(), 32, None, b"strongroom wrap-key v1").derive(master.key)
    env = wrap_data_key(master, DK1)
    h = parse_header(env)
    assert AESGCM(wrap_key).decrypt(h.nonce, env[h.size :], env[: h.size]) == DK1.key


def test_unwrap_checks_kind_and_slot(master: MasterKey) -> None:
    wrapped = master.wrap(b"k" * 32, kind=KIND_DATA_KEY, key_id="dk-0001")
    assert master.unwrap(wrapped, kind=KIND_DATA_KEY, key_id="dk-0001") == b"k" * 32
    with pytest.raises(CorruptVault, match="expected 'dk-0002'"):
        master.unwrap(wrapped, kind=KIND_DATA_KEY, key_id="dk-0002")
    with pytest.raises(CorruptVault, match="expected a 'signing-key'"):
        master.unwrap(wrapped, kind=KIND_SIGNING_KEY)
    with pytest.raises(CorruptVault, match="not a Strongroom envelope"):
        master.unwrap(b"garbage", kind=KIND_DATA_KEY)
    # A data key sealed with seal() is not a master-wrapped key.
    with pytest.raises(AuthError):
        master.unwrap(seal(DK1, b"k" * 32, kind=KIND_DATA_KEY), kind=KIND_DATA_KEY)


def test_kdf_params_json_round_trip() -> None:
    strengths: tuple[Literal["interactive", "test"], ...] = ("interactive", "test")
    for strength in strengths:
        params = KdfParams.new(strength)
        as_json = json.loads(json.dumps(params.to_json()))
        assert KdfParams.from_json(as_json) == params
    p = KdfParams.new().to_json()
    assert p["algorithm"] == "argon2id"
    assert (p["memory_kib"], p["iterations"], p["lanes"]) == (65536, 3, 4)
    assert len(base64.b64decode(str(p["salt"]))) == 16


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"algorithm": "scrypt"}, "unknown key derivation algorithm 'scrypt'"),
        ({"salt": "!!"}, "not valid base64"),
        ({"salt": base64.b64encode(b"short").decode()}, "16 bytes"),
        ({"salt": 5}, "base64 string"),
        ({"memory_kib": "64"}, "must be an integer"),
        ({"iterations": True}, "must be an integer"),
        ({"iterations": 0}, "out of range"),
        ({"lanes": 1000}, "out of range"),
        ({"memory_kib": 1 << 40}, "out of range"),
        ({"extra": 1}, "exactly"),
    ],
)
def test_kdf_params_reject_bad_json(change: dict[str, object], message: str) -> None:
    obj: dict[str, object] = {**KdfParams.new("test").to_json(), **change}
    with pytest.raises(CorruptVault, match=message):
        KdfParams.from_json(obj)


def test_kdf_params_reject_non_mapping() -> None:
    with pytest.raises(CorruptVault):
        KdfParams.from_json(["argon2id"])


def test_interactive_kdf_is_reasonably_fast() -> None:
    params = KdfParams.new("interactive")
    start = time.perf_counter()
    derive_master_key("a realistic passphrase", params)
    elapsed = time.perf_counter() - start
    # Sanity only (~0.2 s on the dev box); generous so a loaded CI host passes.
    assert elapsed < 5.0, f"interactive Argon2id took {elapsed:.2f}s"


# --------------------------------------------------------------------- key files


def test_key_file_round_trip(tmp_path: Path) -> None:
    text = new_key_file_text()
    assert text.startswith("strongroom-key-v1:") and text.endswith("\n")
    assert text.count("\n") == 1
    path = tmp_path / "vault.key"
    path.write_text(text)
    key = load_key_file(path)
    assert key.key == base64.b64decode(text.removeprefix("strongroom-key-v1:"))
    assert load_key_file(str(path)).key == key.key
    path.write_bytes(text.encode().rstrip(b"\n"))  # no final newline
    assert load_key_file(path).key == key.key
    path.write_bytes(text.encode().replace(b"\n", b"\r\n"))
    assert load_key_file(path).key == key.key
    assert new_key_file_text() != text


def _b64(n: int) -> str:
    return base64.b64encode(b"\x5a" * n).decode()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n",
        f"strongroom-key-v2:{_b64(32)}\n".encode(),
        f"STRONGROOM-KEY-V1:{_b64(32)}\n".encode(),
        f" strongroom-key-v1:{_b64(32)}\n".encode(),
        f"strongroom-key-v1: {_b64(32)}\n".encode(),
        f"strongroom-key-v1:{_b64(31)}\n".encode(),
        f"strongroom-key-v1:{_b64(33)}\n".encode(),
        f"strongroom-key-v1:{_b64(32)}\n\n".encode(),
        f"strongroom-key-v1:{_b64(32)}\nextra\n".encode(),
        f"strongroom-key-v1:{_b64(32).rstrip('=')}\n".encode(),
        b"strongroom-key-v1:" + b"\xff\xfe" * 22 + b"\n",
        b"strongroom-key-v1:" + b"!" * 44 + b"\n",
        b"\x00\x01garbage\xff" * 10,
        b"a" * 100_000,
    ],
)
def test_key_file_rejects_malformed(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(BadInput) as info:
        load_key_file(path)
    assert str(path) in info.value.message
    # The message never echoes the file's content (it may be a secret).
    assert _b64(32) not in info.value.message
    assert "Wlpa" not in info.value.message


def test_key_file_non_canonical_base64_rejected(tmp_path: Path) -> None:
    body = _b64(32)  # ends in "=": the last data char carries 2 unused bits
    tweaked = body[:-2] + chr(ord(body[-2]) + 1) + "="
    assert base64.b64decode(tweaked) == base64.b64decode(body)
    path = tmp_path / "k.key"
    path.write_text(f"strongroom-key-v1:{tweaked}\n")
    with pytest.raises(BadInput, match="canonical"):
        load_key_file(path)


def test_key_file_missing_or_unreadable(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_key_file(tmp_path / "nope.key")
    with pytest.raises(BadInput, match="cannot read key file"):
        load_key_file(tmp_path)  # a directory


# ------------------------------------------------------------------------ repr


def _secret_forms(key: bytes) -> list[str]:
    return [
        key.hex(),
        key.hex().upper(),
        base64.b64encode(key).decode(),
        base64.urlsafe_b64encode(key).decode(),
        repr(key)[2:-1],
    ]


def test_repr_never_shows_key_bytes(master: MasterKey) -> None:
    dk = DataKey.generate("dk-0042")
    hasher = master.chunk_hasher()
    ring = Keyring([dk])
    for obj, key in ((master, master.key), (dk, dk.key), (hasher, hasher.key), (ring, dk.key)):
        for text in (repr(obj), str(obj), f"{obj}", f"{obj!r}"):
            for form in _secret_forms(key):
                assert form not in text
    assert "redacted" in repr(master)
    assert "dk-0042" in repr(dk)


# ------------------------------------------------------------------- keyring


def test_keyring_rotation_keeps_old_objects_readable() -> None:
    ring = Keyring()
    assert ring.next_key_id() == "dk-0001"
    first = ring.rotate()
    assert first.key_id == "dk-0001" and ring.current is first
    old = seal(ring.current, b"old record", kind="chunk", context=b"o/1")

    second = ring.rotate()
    assert second.key_id == "dk-0002" and ring.current is second
    new = seal(ring.current, b"new record", kind="chunk", context=b"o/2")
    assert parse_header(old).key_id == "dk-0001"
    assert parse_header(new).key_id == "dk-0002"
    assert open_envelope(ring, old, kind="chunk", context=b"o/1") == b"old record"
    assert open_envelope(ring, new, kind="chunk", context=b"o/2") == b"new record"
    assert [k.key_id for k in ring] == ["dk-0001", "dk-0002"]
    assert len(ring) == 2 and "dk-0001" in ring


def test_keyring_reloaded_from_wrapped_keys(master: MasterKey) -> None:
    ring = Keyring()
    for _ in range(3):
        ring.rotate()
    env = seal(ring.current, b"data", kind="chunk")
    wrapped = [wrap_data_key(master, k) for k in ring]
    reloaded = Keyring(unwrap_data_key(master, w) for w in reversed(wrapped))
    assert reloaded.current.key_id == "dk-0003"  # newest by number, not load order
    assert open_envelope(reloaded, env, kind="chunk") == b"data"
    assert reloaded.next_key_id() == "dk-0004"


def test_keyring_errors() -> None:
    ring = Keyring()
    with pytest.raises(CorruptVault, match="no data keys"):
        _ = ring.current
    ring.add(DK1)
    with pytest.raises(CorruptVault, match="already holds"):
        ring.add(DataKey.generate("dk-0001"))
    with pytest.raises(CorruptVault, match="unknown key id 'dk-0007'"):
        ring.get("dk-0007")
    other = DataKey.generate("dk-0007")
    with pytest.raises(CorruptVault, match="unknown key id 'dk-0007'"):
        open_envelope(ring, seal(other, b"x", kind="chunk"), kind="chunk")


def test_data_key_validation() -> None:
    with pytest.raises(ValueError, match="dk-0001"):
        DataKey.generate("key-1")
    with pytest.raises(ValueError, match="32 bytes"):
        DataKey("dk-0001", b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(b"short")


# --------------------------------------------------------------- chunk ids


def test_chunk_ids_keyed_and_stable_across_rotation(
    master: MasterKey, test_params: KdfParams
) -> None:
    h = master.chunk_hasher()
    data = b"chunk data" * 1000
    cid = h.chunk_id(data)
    assert len(cid) == 32
    assert h.chunk_id(memoryview(data)) == cid
    assert master.chunk_hasher().chunk_id(data) == cid  # no dependence on data keys
    assert ChunkHasher(master.derive(b"strongroom chunk-id v1")).chunk_id(data) == cid
    other = derive_master_key("another vault", test_params).chunk_hasher()
    assert other.chunk_id(data) != cid
    import hashlib
    import hmac

    assert cid != hashlib.sha256(data).digest()
    # it is plain HMAC-SHA256 (docs/formats), whatever the size and from any thread
    key = master.derive(b"strongroom chunk-id v1")
    for d in (b"", b"x", data, data * 100):
        assert h.chunk_id(d) == hmac.digest(key, d, "sha256")
    from concurrent.futures import ThreadPoolExecutor

    inputs = [bytes([i]) * (i * 997) for i in range(64)]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(h.chunk_id, inputs)) == [hmac.digest(key, d, "sha256") for d in inputs]


# ------------------------------------------------------------------ signing


def test_signing_key_wrap_round_trip(master: MasterKey, test_params: KdfParams) -> None:
    sk = generate_signing_key()
    wrapped = wrap_signing_key(master, sk)
    assert parse_header(wrapped).kind == "signing-key"
    restored = unwrap_signing_key(master, wrapped)
    assert public_key_bytes(restored) == public_key_bytes(sk)
    assert public_key_bytes(sk.public_key()) == public_key_bytes(sk)
    assert len(public_key_bytes(sk)) == 32
    sig = restored.sign(b"checkpoint 42")
    Ed25519PublicKey.from_public_bytes(public_key_bytes(sk)).verify(sig, b"checkpoint 42")
    wrong = derive_master_key("not it", test_params)
    with pytest.raises(AuthError):
        unwrap_signing_key(wrong, wrapped)
    tampered = bytearray(wrapped)
    tampered[-1] ^= 1
    with pytest.raises(AuthError):
        unwrap_signing_key(master, bytes(tampered))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=st.binary(max_size=512), kind=labels, key_id=labels, context=st.binary(max_size=64))
def test_master_wrap_round_trip(
    master: MasterKey, secret: bytes, kind: str, key_id: str, context: bytes
) -> None:
    env = master.wrap(secret, kind=kind, key_id=key_id, context=context)
    assert master.unwrap(env, kind=kind, key_id=key_id, context=context) == secret
    if context:
        with pytest.raises(AuthError):
            master.unwrap(env, kind=kind, context=b"")
