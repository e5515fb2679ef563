"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, Ed25519 only.

A checkpoint commits to the audit log's Merkle tree at one size
(https://c2sp.org/tlog-checkpoint)::

    <origin>
    <tree size, decimal>
    <base64 root hash>
    [extension lines]

and is wrapped in a signed note (https://c2sp.org/signed-note): the text, a blank
line, and one signature line per signer, ``— <key name> base64(key ID || signature)``.
Using the public formats means third-party tooling (witnesses, monitors) can check
our checkpoints, and an auditor needs only the vkey string to verify one.

Parsing is strict and bounded: a note that is not exactly in the canonical form,
that is too large, that has too many signature lines, or that carries no valid
signature from a trusted key raises :class:`~strongroom.errors.BadInput` naming the
problem. Signatures by unknown keys are ignored, as the spec requires; a bad
signature by a trusted key rejects the whole note. Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from strongroom.errors import BadInput

__all__ = [
    "ED25519_SIGNATURE_TYPE",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "Verifier",
    "key_id",
    "open_note",
    "parse_body",
    "parse_vkey",
    "sign",
    "sign_note",
    "verify_note",
    "vkey",
]

ED25519_SIGNATURE_TYPE: Final = 0x01
"""Signed-note signature type byte for Ed25519."""

MAX_NOTE_SIZE: Final = 1 << 20
"""Largest note accepted, in bytes (1 MiB)."""

MAX_SIGNATURES: Final = 100
"""Most signature lines accepted (the spec requires at least 16)."""

MAX_TREE_SIZE: Final = (1 << 64) - 1
"""Largest tree size a checkpoint may state (uint64, as in every tlog implementation)."""

_HASH_SIZE: Final = 32
_KEY_ID_SIZE: Final = 4
_ED25519_KEY_SIZE: Final = 32
_ED25519_SIG_SIZE: Final = 64
_SIG_PREFIX: Final = "\u2014 "  # em dash, space
_SIZE_RE: Final = re.compile(r"0|[1-9][0-9]{0,19}")
_KEY_ID_HEX_RE: Final = re.compile(r"[0-9a-f]{8}")

Verifier = tuple[str, Ed25519PublicKey]
"""A trusted key: its name and its Ed25519 public key."""


# ------------------------------------------------------------------------ helpers


def _control_char(text: str) -> str | None:
    """First ASCII control character other than newline in ``text``, if any."""
    for ch in text:
        if ch < " " and ch != "\n":
            return ch
    return None


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid key name (non-empty, no spaces, no '+'), or None."""
    if not name:
        return "is empty"
    if "+" in name:
        return "contains '+'"
    if any(ch.isspace() for ch in name):
        return "contains a space"
    if _control_char(name) is not None:
        return "contains a control character"
    return None


def _check_name(name: str) -> None:
    problem = _name_problem(name)
    if problem is not None:
        raise ValueError(f"key name {name!r} {problem}")


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4): padded, canonical, nothing else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise BadInput(f"{what} is not canonical base64")
    return raw


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


# -------------------------------------------------------------------- checkpoints


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: who (``origin``), how many leaves (``size``) and the root.

    ``extensions`` are extra opaque lines after the root; the spec discourages them.
    Construction checks the spec's MUSTs and raises ValueError (programmer error);
    untrusted text goes through :func:`parse_body` / :func:`open_note` instead.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _control_char(self.origin):
            raise ValueError(f"checkpoint origin {self.origin!r} is empty or has a control char")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"checkpoint size {self.size!r} is not in 0..2**64-1")
        if len(self.root) != _HASH_SIZE:
            raise ValueError(f"checkpoint root must be {_HASH_SIZE} bytes, got {len(self.root)}")
        for line in self.extensions:
            if not line or "\n" in line or _control_char(line):
                raise ValueError(f"checkpoint extension line {line!r} is empty or malformed")

    def body(self) -> bytes:
        """The note text: origin, size, base64 root and extensions, each ending in newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        lines.extend(self.extensions)
        return "".join(f"{line}\n" for line in lines).encode("utf-8")


def parse_body(text: bytes) -> Checkpoint:
    """Parse a checkpoint note text strictly; :class:`BadInput` on any deviation.

    The size must be decimal without leading zeros (``0`` only for the empty tree)
    and fit in uint64; the root must be canonical base64 of 32 bytes; extension
    lines must be non-empty. This does not check any signature: use
    :func:`open_note` for anything received from outside.
    """
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"checkpoint is not valid UTF-8 (byte {e.start})") from None
    bad = _control_char(s)
    if bad is not None:
        raise BadInput(f"checkpoint contains control character {bad!r}")
    if not s.endswith("\n"):
        raise BadInput("checkpoint text does not end with a newline")
    lines = s[:-1].split("\n")
    if len(lines) < 3:
        raise BadInput(f"checkpoint has {len(lines)} lines; origin, size and root are required")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise BadInput("checkpoint origin line is empty")
    if not _SIZE_RE.fullmatch(size_text):
        raise BadInput(
            f"checkpoint size {size_text[:40]!r} is not a decimal number without leading zeros"
        )
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise BadInput(f"checkpoint size {size} does not fit in 64 bits")
    root = _b64decode(root_text, "checkpoint root hash")
    if len(root) != _HASH_SIZE:
        raise BadInput(f"checkpoint root hash is {len(root)} bytes, expected {_HASH_SIZE}")
    for i, line in enumerate(extensions):
        if not line:
            raise BadInput(f"checkpoint extension line {i + 1} is empty")
    return Checkpoint(origin, size, root, tuple(extensions))


# ------------------------------------------------------------------------- keys


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """4-byte key ID: SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]."""
    _check_name(name)
    material = name.encode("utf-8") + b"\n" + bytes([ED25519_SIGNATURE_TYPE])
    return hashlib.sha256(material + _raw_public(public_key)).digest()[:_KEY_ID_SIZE]


def vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """Verifier key string ``name+<hex key ID>+base64(0x01 || public key)``.

    The format of Go's sumdb/note and of every C2SP tlog tool, so an auditor can
    paste it into third-party verifiers.
    """
    kid = key_id(name, public_key).hex()
    key = base64.b64encode(bytes([ED25519_SIGNATURE_TYPE]) + _raw_public(public_key))
    return f"{name}+{kid}+{key.decode('ascii')}"


def parse_vkey(s: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """Parse a verifier key string into ``(name, key ID, public key)``.

    Strict: valid name, 8 lowercase hex digits, canonical base64 of type 0x01 and a
    32-byte key, and the key ID must match the name and key. :class:`BadInput`
    otherwise.
    """
    parts = s.split("+", 2)
    if len(parts) != 3:
        raise BadInput(f"verifier key {s[:80]!r} is not of the form name+keyid+key")
    name, kid_hex, key_b64 = parts
    problem = _name_problem(name)
    if problem is not None:
        raise BadInput(f"verifier key name {name!r} {problem}")
    if not _KEY_ID_HEX_RE.fullmatch(kid_hex):
        raise BadInput(f"verifier key ID {kid_hex!r} is not 8 lowercase hex digits")
    raw = _b64decode(key_b64, "verifier key")
    if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != ED25519_SIGNATURE_TYPE:
        raise BadInput("verifier key is not an Ed25519 key (type 0x01 and 32 bytes)")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    kid = bytes.fromhex(kid_hex)
    if key_id(name, public_key) != kid:
        raise BadInput(f"verifier key ID {kid_hex} does not match name {name!r} and key")
    return name, kid, public_key


# ------------------------------------------------------------------ signed notes


def sign_note(text: bytes, name: str, private_key: Ed25519PrivateKey) -> bytes:
    """Sign note ``text`` (which must end in newline): text, blank line, signature line."""
    _check_name(name)
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("note text must be valid UTF-8") from None
    if not s.endswith("\n") or _control_char(s) is not None:
        raise ValueError("note text must end in newline and hold no other control chars")
    kid = key_id(name, private_key.public_key())
    sig = base64.b64encode(kid + private_key.sign(text)).decode("ascii")
    return text + b"\n" + f"{_SIG_PREFIX}{name} {sig}\n".encode()


def sign(cp: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> bytes:
    """Signed note of checkpoint ``cp`` by key ``name`` (conventionally the origin)."""
    return sign_note(cp.body(), name, private_key)


def verify_note(note: bytes, verifiers: Sequence[Verifier]) -> bytes:
    """Check a signed note and return its text (ending in newline, no blank separator).

    Requires at least one valid signature by a key in ``verifiers`` (matched on
    both name and key ID). Signatures by other keys are ignored; a signature by a
    trusted key that does not verify rejects the note. :class:`BadInput` for every
    malformed, oversize, unsigned or wrongly signed note.
    """
    known: dict[tuple[str, bytes], Ed25519PublicKey] = {}
    for name, public_key in verifiers:
        known[(name, key_id(name, public_key))] = public_key
    if len(note) > MAX_NOTE_SIZE:
        raise BadInput(f"note is {len(note)} bytes; the limit is {MAX_NOTE_SIZE}")
    try:
        s = note.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"note is not valid UTF-8 (byte {e.start})") from None
    bad = _control_char(s)
    if bad == "\r":
        raise BadInput("note contains a carriage return (CRLF line endings are not allowed)")
    if bad is not None:
        raise BadInput(f"note contains control character {bad!r}")
    split = s.rfind("\n\n")
    if split < 0:
        raise BadInput("note has no blank line before its signatures")
    text, sigs = s[: split + 1], s[split + 2 :]
    if not sigs:
        raise BadInput("note has no signature lines")
    if not sigs.endswith("\n"):
        raise BadInput("note does not end with a newline")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise BadInput(f"note has {len(lines)} signature lines; the limit is {MAX_SIGNATURES}")
    text_bytes = text.encode("utf-8")
    verified: set[tuple[str, bytes]] = set()
    for n, line in enumerate(lines, start=1):
        if not line.startswith(_SIG_PREFIX):
            raise BadInput(f"note signature line {n} does not start with an em dash and space")
        name, _, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
        problem = _name_problem(name)
        if problem is not None:
            raise BadInput(f"note signature line {n}: key name {name!r} {problem}")
        if not sig_b64:
            raise BadInput(f"note signature line {n} has no signature")
        raw = _b64decode(sig_b64, f"note signature line {n}")
        if len(raw) <= _KEY_ID_SIZE:
            raise BadInput(f"note signature line {n} is too short to hold a key ID and signature")
        kid, sig = raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:]
        trusted_key = known.get((name, kid))
        if trusted_key is None or (name, kid) in verified:
            continue  # unknown signer (ignored, as the spec requires) or a repeat
        if len(sig) != _ED25519_SIG_SIZE:
            raise BadInput(
                f"signature by {name} ({kid.hex()}) is {len(sig)} bytes, "
                f"expected {_ED25519_SIG_SIZE}"
            )
        try:
            trusted_key.verify(sig, text_bytes)
        except InvalidSignature:
            raise BadInput(f"signature by {name} ({kid.hex()}) does not verify") from None
        verified.add((name, kid))
    if not verified:
        trusted = ", ".join(sorted(f"{nm} ({k.hex()})" for nm, k in known)) or "none"
        raise BadInput(f"note is not signed by any trusted key (trusted: {trusted})")
    return text_bytes


def open_note(
    note: bytes, verifiers: Sequence[Verifier], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint note and return the checkpoint it commits to.

    Signatures are checked first (the text means nothing until then), then the
    body is parsed with :func:`parse_body`. If ``origin`` is given, the
    checkpoint's origin must equal it, so a checkpoint of another log signed by the
    same key is not mistaken for ours.
    """
    cp = parse_body(verify_note(note, verifiers))
    if origin is not None and cp.origin != origin:
        raise BadInput(f"checkpoint origin {cp.origin!r} is not the expected {origin!r}")
    return cp
