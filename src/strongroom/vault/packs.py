"""Pack objects: many encrypted blobs (chunks, record manifests) in one stored object.

Layout (docs/formats/pack.md)::

    header   "SRPK" | version u8 (=1) | pack nonce (16 random bytes)
    blobs    envelope ...            (crypto.seal, context = name NUL blob id)
    index    envelope kind "pack-index" (context = name): the blob table
    footer   index length u32 BE | "SRPK"

Each blob's plaintext is a one-byte codec (0 = stored, 1 = zstd) followed by the
data. Every blob is sealed with AES-256-GCM under the vault's current data key, with
the pack's name and the blob's id in the associated data, so a blob cannot be moved
to another pack or position without failing authentication. The index is sealed too,
and lists (blob id, kind, offset, length, plaintext length) so that ``reindex`` can
rebuild the chunk table from the store alone.

Packs are grouped by expiry month ("bucket"), so that whole packs expire together
and disposal frees space. A pack's retain-until is the latest retain-until of the
records whose content it holds; it is extended when a later record reuses a chunk.
"""

from __future__ import annotations

import enum
import secrets
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import zstandard

from strongroom.crypto import DataKey, Keyring, open_envelope, seal
from strongroom.errors import CorruptVault

MAGIC = b"SRPK"
VERSION = 1
_HEADER = struct.Struct(">4sB16s")
_FOOTER = struct.Struct(">I4s")
_INDEX_ROW = struct.Struct(">BQII")  # kind, offset, length, plain length (then id)
MAX_INDEX = 64 << 20
# zstd level 2: on text-like data it compresses ~1.6x faster than level 3 (226 vs 140 MB/s
# per core here) for a ~3% larger result (ratio 0.295 vs 0.287); see docs/benchmarks.md
ZSTD_LEVEL = 2

# zstandard's (de)compressor objects must not be shared between threads: one per thread
_local = threading.local()


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None = getattr(
        _local, "zstd", None
    )
    if pair is None:
        pair = (zstandard.ZstdCompressor(level=ZSTD_LEVEL), zstandard.ZstdDecompressor())
        _local.zstd = pair
    return pair


class BlobKind(enum.IntEnum):
    CHUNK = 1
    MANIFEST = 2


@dataclass(frozen=True, slots=True)
class BlobRef:
    """Where a blob lives: the pack object, byte range and sizes."""

    pack: str
    offset: int
    length: int
    plain_len: int


@dataclass(frozen=True, slots=True)
class IndexRow:
    blob_id: bytes
    kind: BlobKind
    offset: int
    length: int
    plain_len: int


def pack_name(bucket: str) -> str:
    return f"packs/{bucket}/{secrets.token_hex(16)}"


def bucket_of(retain_until: datetime) -> str:
    """Packs are grouped by the month their content may expire in."""
    return f"{retain_until.year:04d}-{retain_until.month:02d}"


def _context(name: str, blob_id: bytes) -> bytes:
    return name.encode() + b"\0" + blob_id


def seal_blob(key: DataKey, pack: str, blob_id: bytes, encoded: bytes) -> bytes:
    """An encoded blob sealed for its place: pack name and blob id are bound in."""
    return seal(key, encoded, kind="blob", context=_context(pack, blob_id))


def encode_blob(data: bytes | memoryview, compress: bool = True) -> bytes:
    """Codec byte + data, zstd when it saves space (random data is stored as is)."""
    if compress and len(data) > 64:
        packed = _zstd()[0].compress(data)
        if len(packed) < len(data):
            return b"\x01" + packed
    return b"\x00" + bytes(data)


def decode_blob(plain: bytes, plain_len: int, where: str) -> bytes:
    if not plain:
        raise CorruptVault(f"{where}: empty blob")
    codec, body = plain[0], plain[1:]
    if codec == 0:
        out = body
    elif codec == 1:
        try:
            out = _zstd()[1].decompress(body, max_output_size=plain_len)
        except zstandard.ZstdError as e:
            raise CorruptVault(f"{where}: zstd data is corrupt: {e}") from e
    else:
        raise CorruptVault(f"{where}: unknown blob codec {codec}")
    if len(out) != plain_len:
        raise CorruptVault(f"{where}: blob is {len(out)} bytes, index says {plain_len}")
    return out


class PackWriter:
    """Accumulates sealed blobs for one pack; ``finish`` returns the object bytes.

    Sealing happens in :meth:`add_sealed` callers' threads (see ``vault.append``);
    the writer only lays out bytes, so it is cheap and single-threaded.
    """

    def __init__(self, bucket: str, key: DataKey) -> None:
        self.bucket = bucket
        self.name = pack_name(bucket)
        self.key = key
        self._buf = bytearray(_HEADER.pack(MAGIC, VERSION, secrets.token_bytes(16)))
        self._rows: list[IndexRow] = []
        self.retain_until: datetime | None = None

    @property
    def size(self) -> int:
        return len(self._buf)

    @property
    def count(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> list[IndexRow]:
        return list(self._rows)

    def seal_blob(self, blob_id: bytes, encoded: bytes) -> bytes:
        """Seal an encoded blob for this pack (thread-safe: no writer state touched)."""
        return seal_blob(self.key, self.name, blob_id, encoded)

    def add_sealed(
        self, blob_id: bytes, kind: BlobKind, sealed: bytes | memoryview, plain_len: int
    ) -> BlobRef:
        offset = len(self._buf)
        self._buf += sealed
        self._rows.append(IndexRow(blob_id, kind, offset, len(sealed), plain_len))
        return BlobRef(self.name, offset, len(sealed), plain_len)

    def add(self, blob_id: bytes, kind: BlobKind, data: bytes, compress: bool = True) -> BlobRef:
        return self.add_sealed(
            blob_id, kind, self.seal_blob(blob_id, encode_blob(data, compress)), len(data)
        )

    def note_retention(self, retain_until: datetime) -> None:
        if self.retain_until is None or retain_until > self.retain_until:
            self.retain_until = retain_until

    def finish(self) -> bytearray:
        """The pack's bytes: the buffer itself, completed in place (a 16 MiB pack is not
        copied twice on its way to the store); the writer is done after this."""
        table = bytearray()
        for r in self._rows:
            table += _INDEX_ROW.pack(r.kind, r.offset, r.length, r.plain_len)
            table += bytes([len(r.blob_id)]) + r.blob_id
        index = seal(self.key, bytes(table), kind="pack-index", context=self.name.encode())
        self._buf += index
        self._buf += _FOOTER.pack(len(index), MAGIC)
        buf, self._buf = self._buf, bytearray()
        return buf


def parse_header(data: bytes, name: str) -> None:
    if len(data) < _HEADER.size:
        raise CorruptVault(f"pack {name}: truncated header")
    magic, version, _ = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptVault(f"pack {name}: not a Strongroom pack (bad magic)")
    if version != VERSION:
        raise CorruptVault(f"pack {name}: unknown pack version {version}")


def index_location(footer: bytes, total: int, name: str) -> tuple[int, int]:
    """(offset, length) of the sealed index, from the last 8 bytes and the pack size."""
    if len(footer) != _FOOTER.size or total < _HEADER.size + _FOOTER.size:
        raise CorruptVault(f"pack {name}: truncated")
    length, magic = _FOOTER.unpack(footer)
    if magic != MAGIC or length > min(MAX_INDEX, total - _HEADER.size - _FOOTER.size):
        raise CorruptVault(f"pack {name}: bad footer")
    return total - _FOOTER.size - length, length


def parse_index(sealed: bytes, keyring: Keyring, name: str) -> list[IndexRow]:
    table = open_envelope(keyring, sealed, kind="pack-index", context=name.encode())
    rows: list[IndexRow] = []
    pos = 0
    try:
        while pos < len(table):
            kind, offset, length, plain_len = _INDEX_ROW.unpack_from(table, pos)
            pos += _INDEX_ROW.size
            n = table[pos]
            blob_id = bytes(table[pos + 1 : pos + 1 + n])
            pos += 1 + n
            if len(blob_id) != n:
                raise CorruptVault(f"pack {name}: truncated index")
            rows.append(IndexRow(blob_id, BlobKind(kind), offset, length, plain_len))
    except (struct.error, IndexError, ValueError) as e:
        raise CorruptVault(f"pack {name}: malformed index: {e}") from e
    return rows


def open_blob(keyring: Keyring, name: str, blob_id: bytes, sealed: bytes, plain_len: int) -> bytes:
    plain = open_envelope(keyring, sealed, kind="blob", context=_context(name, blob_id))
    return decode_blob(plain, plain_len, f"pack {name} blob {blob_id.hex()[:16]}")


def iter_blobs(data: bytes, rows: list[IndexRow]) -> Iterator[tuple[IndexRow, bytes]]:
    for r in rows:
        yield r, data[r.offset : r.offset + r.length]
