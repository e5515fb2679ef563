"""C2SP tlog-tiles layout: tile names, which tiles a tree has, entry bundles.

The audit log's Merkle tree is stored as immutable "tiles" (https://c2sp.org/tlog-tiles):
a tile at tile level ``L`` holds up to 256 consecutive hashes of tree level ``8 * L``
(tile height 8). Full tiles hold exactly 256 hashes; the rightmost tile of each level
may be *partial*, and each partial width is its own object name, so every tile object
is written once and never changed — which is what a write-once store needs.

Entries themselves are stored in "entry bundles" next to the level-0 tiles, each
entry prefixed by its big-endian uint16 length.

:class:`TileHashSource` turns a tile reader into a :class:`~strongroom.core.merkle.HashSource`,
so inclusion and consistency proofs for any tree size cost a handful of tile reads.
Nothing here does I/O: reading tiles is the caller's callable.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from strongroom.core.merkle import HASH_SIZE, HashSource, node_hash
from strongroom.errors import BadInput

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_TILE_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileHashSource",
    "TileReader",
    "TileRef",
    "decode_bundle",
    "encode_bundle",
    "entries_path",
    "parse_tile_path",
    "tile_hashes",
    "tile_path",
    "tile_width",
    "tiles_for_size",
    "tiles_touched",
]

TILE_HEIGHT: Final = 8
"""Tree levels per tile level."""

TILE_WIDTH: Final = 1 << TILE_HEIGHT
"""Hashes (or entries) in a full tile: 256."""

MAX_TILE_LEVEL: Final = 63
"""Highest tile level a path may name (the spec's bound)."""

MAX_ENTRY_SIZE: Final = 0xFFFF
"""Largest entry a bundle can hold (uint16 length prefix)."""

_MAX_INDEX_GROUPS: Final = 7  # 21 digits: more than any uint64 tree can need
_LEVEL_RE: Final = re.compile(r"0|[1-9][0-9]?")
_WIDTH_RE: Final = re.compile(r"[1-9][0-9]{0,2}")
_GROUP_RE: Final = re.compile(r"[0-9]{3}")
_PREFIX_GROUP_RE: Final = re.compile(r"x[0-9]{3}")


# ------------------------------------------------------------------------- paths


def _check_coords(index: int, width: int) -> None:
    if index < 0:
        raise ValueError(f"tile index must be non-negative, got {index}")
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width must be 1..{TILE_WIDTH}, got {width}")


def _encode_index(index: int, width: int) -> str:
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    encoded = "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])
    return encoded if width == TILE_WIDTH else f"{encoded}.p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """Object name of hash tile ``level``/``index`` of ``width`` hashes.

    E.g. ``tile_path(0, 1234067)`` is ``tile/0/x001/x234/067`` and with ``width=8``
    ``tile/0/x001/x234/067.p/8``: the index in zero-padded 3-digit groups, all but
    the last prefixed with ``x``, and ``.p/<width>`` only for partial tiles.
    """
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level must be 0..{MAX_TILE_LEVEL}, got {level}")
    _check_coords(index, width)
    return f"tile/{level}/{_encode_index(index, width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """Object name of entry bundle ``index`` with ``width`` entries (``tile/entries/...``)."""
    _check_coords(index, width)
    return f"tile/entries/{_encode_index(index, width)}"


def parse_tile_path(path: str) -> tuple[int | Literal["entries"], int, int]:
    """Parse a tile or entry-bundle name into ``(level or "entries", index, width)``.

    Strict: only the canonical form that :func:`tile_path` / :func:`entries_path`
    produce is accepted (no leading zeros, no redundant ``x000`` groups, width 1..255
    only after ``.p/``). Anything else raises :class:`BadInput`.
    """
    if not isinstance(path, str) or len(path) > 128:
        raise BadInput(f"malformed tile path {path!r}: not a string of at most 128 chars")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise BadInput(f"malformed tile path {path!r}: must start with 'tile/<level>/'")
    kind: int | Literal["entries"]
    if parts[1] == "entries":
        kind = "entries"
    elif _LEVEL_RE.fullmatch(parts[1]) and int(parts[1]) <= MAX_TILE_LEVEL:
        kind = int(parts[1])
    else:
        raise BadInput(
            f"malformed tile path {path!r}: level must be 'entries' or 0..{MAX_TILE_LEVEL} "
            "without leading zeros"
        )
    groups = parts[2:]
    width = TILE_WIDTH
    if len(groups) >= 2 and groups[-2].endswith(".p"):
        w = groups[-1]
        if not _WIDTH_RE.fullmatch(w) or int(w) >= TILE_WIDTH:
            raise BadInput(
                f"malformed tile path {path!r}: partial width must be 1..{TILE_WIDTH - 1} "
                "without leading zeros"
            )
        width = int(w)
        groups = [*groups[:-2], groups[-2][: -len(".p")]]
    if len(groups) > _MAX_INDEX_GROUPS:
        raise BadInput(f"malformed tile path {path!r}: index has too many groups")
    if not _GROUP_RE.fullmatch(groups[-1]):
        raise BadInput(f"malformed tile path {path!r}: last index group must be 3 digits")
    for g in groups[:-1]:
        if not _PREFIX_GROUP_RE.fullmatch(g):
            raise BadInput(
                f"malformed tile path {path!r}: index group {g!r} must be 'x' and 3 digits"
            )
    if len(groups) > 1 and groups[0] == "x000":
        raise BadInput(f"malformed tile path {path!r}: index has a redundant leading group")
    index = int("".join(g.removeprefix("x") for g in groups))
    return kind, index, width


# ------------------------------------------------------------------------ bundles


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """Entry bundle: each entry as a big-endian uint16 length followed by its bytes.

    A bundle holds 1..256 entries (one per leaf of its level-0 tile). Raises
    ValueError for an entry over 65535 bytes or a bad entry count.
    """
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise ValueError(f"a bundle holds 1..{TILE_WIDTH} entries, got {len(entries)}")
    out = bytearray()
    for i, e in enumerate(entries):
        if len(e) > MAX_ENTRY_SIZE:
            raise ValueError(f"entry #{i} is {len(e)} bytes; bundles hold at most 65535")
        out += len(e).to_bytes(2, "big")
        out += e
    return bytes(out)


def decode_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """Split an entry bundle back into entries; strict.

    Raises :class:`BadInput` on a truncated length or entry, an empty bundle, more
    than 256 entries, or (when ``width`` is given) a count other than ``width`` —
    extra entries are how trailing bytes show up in a length-prefixed format.
    """
    if width is not None and not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"bundle width must be 1..{TILE_WIDTH}, got {width}")
    entries: list[bytes] = []
    view = memoryview(data)
    pos, end = 0, len(view)
    while pos < end:
        if len(entries) == TILE_WIDTH:
            raise BadInput(f"entry bundle has trailing bytes after {TILE_WIDTH} entries")
        if end - pos < 2:
            raise BadInput(f"entry bundle truncated in the length of entry #{len(entries)}")
        n = int.from_bytes(view[pos : pos + 2], "big")
        pos += 2
        if end - pos < n:
            raise BadInput(
                f"entry bundle truncated in entry #{len(entries)}: "
                f"{n} bytes declared, {end - pos} left"
            )
        entries.append(bytes(view[pos : pos + n]))
        pos += n
    if not entries:
        raise BadInput("entry bundle is empty")
    if width is not None and len(entries) != width:
        raise BadInput(f"entry bundle has {len(entries)} entries, expected {width}")
    return entries


# ------------------------------------------------------------------ tree ⇄ tiles


@dataclass(frozen=True, slots=True, order=True)
class TileRef:
    """One tile object: tile ``level``, ``index`` within the level, ``width`` hashes.

    Width 256 is a full tile; 1..255 a partial one. The level-0 tile with a given
    index and width has an entry bundle of the same index and width.
    """

    level: int
    index: int
    width: int

    def __post_init__(self) -> None:
        if not 0 <= self.level <= MAX_TILE_LEVEL:
            raise ValueError(f"tile level must be 0..{MAX_TILE_LEVEL}, got {self.level}")
        _check_coords(self.index, self.width)

    @property
    def partial(self) -> bool:
        """True for a partial (right-edge) tile."""
        return self.width < TILE_WIDTH

    def path(self) -> str:
        """Object name of this hash tile."""
        return tile_path(self.level, self.index, self.width)

    def entries_path(self) -> str:
        """Object name of the matching entry bundle (level-0 tiles only)."""
        if self.level != 0:
            raise ValueError(f"only level-0 tiles have entry bundles, not level {self.level}")
        return entries_path(self.index, self.width)


def _level_count(level: int, size: int) -> int:
    """Complete subtrees at tree level 8*level, i.e. hashes available at tile level."""
    return size >> (TILE_HEIGHT * level)


def tile_width(level: int, index: int, size: int) -> int:
    """Width of tile ``level``/``index`` in the tree of ``size`` leaves; 0 if it has none."""
    if level < 0 or index < 0 or size < 0:
        raise ValueError(f"invalid tile level {level}, index {index} or size {size}")
    count = _level_count(level, size) - index * TILE_WIDTH
    return max(0, min(TILE_WIDTH, count))


def _check_size(size: int) -> None:
    if size < 0:
        raise ValueError(f"tree size must be non-negative, got {size}")


def tiles_for_size(size: int) -> list[TileRef]:
    """Every hash tile of the tree of ``size`` leaves, by level then index.

    Per tile level ``L`` the tree has ``c = size >> 8L`` complete subtrees of height
    ``8L``: ``c // 256`` full tiles and, if ``c % 256``, one partial tile of that
    width. E.g. size 256 has one full level-0 tile and a level-1 tile of width 1.
    The list has about ``size / 255`` items; use :func:`tiles_touched` for growth.
    """
    _check_size(size)
    tiles: list[TileRef] = []
    level = 0
    while (count := _level_count(level, size)) > 0:
        full, rest = divmod(count, TILE_WIDTH)
        tiles.extend(TileRef(level, i, TILE_WIDTH) for i in range(full))
        if rest:
            tiles.append(TileRef(level, full, rest))
        level += 1
    return tiles


def tiles_touched(old_size: int, new_size: int) -> list[TileRef]:
    """Tiles the tree of ``new_size`` has that the tree of ``old_size`` had not.

    These are the objects to write when the log grows: tiles that became full and
    the new right-edge partial tiles. Since a partial tile's width is part of its
    name, nothing already written is ever rewritten.
    """
    _check_size(old_size)
    if new_size < old_size:
        raise ValueError(f"tree cannot shrink from {old_size} to {new_size}")
    tiles: list[TileRef] = []
    level = 0
    while (new_count := _level_count(level, new_size)) > 0:
        old_count = _level_count(level, old_size)
        if new_count != old_count:
            new_full, rest = divmod(new_count, TILE_WIDTH)
            tiles.extend(
                TileRef(level, i, TILE_WIDTH) for i in range(old_count // TILE_WIDTH, new_full)
            )
            if rest:
                tiles.append(TileRef(level, new_full, rest))
        level += 1
    return tiles


def tile_hashes(level: int, index: int, width: int, src: HashSource) -> bytes:
    """Content of tile ``level``/``index`` of ``width``: its hashes, concatenated.

    Hash ``i`` is ``src.node(8 * level, index * 256 + i)``, so ``src`` must hold those
    perfect subtrees (any tree with at least ``(index * 256 + width) << 8*level`` leaves).
    """
    TileRef(level, index, width)  # validates
    first = index * TILE_WIDTH
    tree_level = TILE_HEIGHT * level
    return b"".join(src.node(tree_level, first + i) for i in range(width))


TileReader = Callable[[int, int, int], bytes]
"""``read_tile(level, index, width) -> bytes``: fetch one stored tile."""


class TileHashSource:
    """A :class:`~strongroom.core.merkle.HashSource` backed by stored tiles.

    ``node(level, index)`` reads the tile that covers the subtree in the tree of
    ``size`` leaves — the full tile when that tree has it, otherwise the partial
    tile of the width that tree defines (the one its checkpoint guarantees exists) —
    and hashes up inside the tile for levels between tile levels. Tiles and their
    inner levels are kept in a small LRU cache, so a proof costs a few reads.

    Tile bytes are not trusted: a tile of the wrong length raises :class:`BadInput`;
    wrong hashes surface when the resulting proof or root fails to verify.
    """

    __slots__ = ("_cache", "_cache_tiles", "_read_tile", "_size")

    def __init__(self, read_tile: TileReader, size: int, *, cache_tiles: int = 64) -> None:
        _check_size(size)
        if cache_tiles < 1:
            raise ValueError(f"cache_tiles must be at least 1, got {cache_tiles}")
        self._read_tile = read_tile
        self._size = size
        self._cache_tiles = cache_tiles
        self._cache: OrderedDict[tuple[int, int, int], list[list[bytes]]] = OrderedDict()

    @property
    def size(self) -> int:
        """Size of the tree whose tiles are read."""
        return self._size

    def node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree at ``level``, ``index`` of the tree of :attr:`size`."""
        if level < 0 or index < 0 or (index + 1) << level > self._size:
            raise ValueError(
                f"no complete subtree at level {level}, index {index} "
                f"in a tree of size {self._size}"
            )
        tile_level, inner = divmod(level, TILE_HEIGHT)
        first = index << inner  # leftmost hash of this subtree at the tile's level
        tile_index, offset = divmod(first, TILE_WIDTH)
        width = tile_width(tile_level, tile_index, self._size)
        rows = self._tile(tile_level, tile_index, width)
        return rows[inner][offset >> inner]

    def _tile(self, level: int, index: int, width: int) -> list[list[bytes]]:
        """Tile hashes plus every complete level hashed up inside it (row 0 = tile)."""
        key = (level, index, width)
        rows = self._cache.get(key)
        if rows is not None:
            self._cache.move_to_end(key)
            return rows
        data = self._read_tile(level, index, width)
        if len(data) != width * HASH_SIZE:
            raise BadInput(
                f"tile {tile_path(level, index, width)} is {len(data)} bytes, "
                f"expected {width * HASH_SIZE}"
            )
        row = [bytes(data[i : i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]
        rows = [row]
        while len(row) > 1:
            row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
            rows.append(row)
        self._cache[key] = rows
        if len(self._cache) > self._cache_tiles:
            self._cache.popitem(last=False)
        return rows
