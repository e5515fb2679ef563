"""Tests for strongroom.core.tiles: the C2SP tlog-tiles layout (https://c2sp.org/tlog-tiles).

Requirement: F2-i-A-4 (hash-chained audit log with signed checkpoints) — the log's
Merkle tree is stored as immutable tiles, and proofs are served from them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.core.merkle import (
    MemoryHashSource,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from strongroom.core.tiles import (
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    TileHashSource,
    TileRef,
    decode_bundle,
    encode_bundle,
    entries_path,
    parse_tile_path,
    tile_hashes,
    tile_path,
    tile_width,
    tiles_for_size,
    tiles_touched,
)
from strongroom.errors import BadInput

PROPERTY = settings(derandomize=bool(os.environ.get("CI")), deadline=None, max_examples=100)


# --------------------------------------------------------------------------- paths


def test_path_examples_from_spec() -> None:
    """tlog-tiles: index 1234067 is x001/x234/067; partial tiles end in .p/<width>."""
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(0, 1234067, 8) == "tile/0/x001/x234/067.p/8"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(1234067, 8) == "tile/entries/x001/x234/067.p/8"
    assert tile_path(0, 0) == "tile/0/000"
    assert tile_path(63, 5, 1) == "tile/63/005.p/1"
    assert tile_path(1, 999) == "tile/1/999"
    assert tile_path(1, 1000) == "tile/1/x001/000"
    assert tile_path(2, 1000000, 255) == "tile/2/x001/x000/000.p/255"
    assert TileRef(0, 7, 3).path() == "tile/0/007.p/3"
    assert TileRef(0, 7, 3).entries_path() == "tile/entries/007.p/3"


@pytest.mark.parametrize(
    ("level", "index", "width"),
    [(-1, 0, 256), (64, 0, 256), (0, -1, 256), (0, 0, 0), (0, 0, 257)],
)
def test_path_rejects_bad_coordinates(level: int, index: int, width: int) -> None:
    with pytest.raises(ValueError, match="tile"):
        tile_path(level, index, width)
    with pytest.raises(ValueError, match="tile"):
        TileRef(level, index, width)


def test_entries_path_only_for_level_zero() -> None:
    with pytest.raises(ValueError, match="level-0"):
        TileRef(1, 0, 256).entries_path()


_levels = st.one_of(st.integers(0, 63), st.just("entries"))


@PROPERTY
@given(_levels, st.integers(0, 10**18), st.integers(1, TILE_WIDTH))
def test_parse_round_trip(level: int | str, index: int, width: int) -> None:
    """Every name we produce parses back to the same coordinates."""
    path = entries_path(index, width) if level == "entries" else tile_path(int(level), index, width)
    assert parse_tile_path(path) == (level, index, width)


MALFORMED = [
    "",
    "tile",
    "tile/0",
    "tile/0/",
    "/tile/0/000",
    "tiles/0/000",
    "tile//000",
    "tile/00/000",
    "tile/01/000",
    "tile/64/000",
    "tile/-1/000",
    "tile/data/000",
    "tile/0/0",
    "tile/0/00",
    "tile/0/0000",
    "tile/0/-01",
    "tile/0/ 01",
    "tile/0/0x1",
    "tile/0/x001",
    "tile/0/001/234",
    "tile/0/x001/x234",
    "tile/0/X001/234",
    "tile/0/x000/001",
    "tile/0/x000/x001/234",
    "tile/0/000/",
    "tile/0/000.p",
    "tile/0/000.p/",
    "tile/0/000.p/0",
    "tile/0/000.p/256",
    "tile/0/000.p/08",
    "tile/0/000.p/1x",
    "tile/0/000.P/5",
    "tile/0/000.p/5/6",
    "tile/0/000.p/5.p/6",
    "tile/0/x001.p/5/234",
    "tile/0/\u0660\u0660\u0661",  # Arabic-Indic digits are not ASCII digits
    "tile/\u0661/000",
    "tile/entries/000.p/1/2",
    "tile/entries",
    "tile/0/x001/x002/x003/x004/x005/x006/x007/008",
    "tile/0/" + "x001/" * 40 + "001",
]


@pytest.mark.parametrize("path", MALFORMED)
def test_parse_rejects_malformed(path: str) -> None:
    with pytest.raises(BadInput, match="malformed tile path"):
        parse_tile_path(path)


def _canonical_or_rejected(path: str) -> None:
    try:
        level, index, width = parse_tile_path(path)
    except BadInput:
        return
    again = entries_path(index, width) if level == "entries" else tile_path(level, index, width)
    assert again == path


@PROPERTY
@given(st.text(alphabet="tile/entrisx0123456789.p-X ", max_size=40))
def test_parse_accepts_only_canonical_text(path: str) -> None:
    """Whatever parses must be exactly the canonical name of what it parsed to."""
    _canonical_or_rejected(path)


@PROPERTY
@given(
    _levels,
    st.integers(0, 10**12),
    st.integers(1, TILE_WIDTH),
    st.tuples(
        st.integers(0, 200),
        st.sampled_from(["delete", "insert", "replace"]),
        st.sampled_from(list("0123456789x/.p-")),
    ),
)
def test_parse_rejects_mutations(
    level: int | str, index: int, width: int, edit: tuple[int, str, str]
) -> None:
    """A one-character edit of a valid name is rejected unless it is another valid name."""
    path = entries_path(index, width) if level == "entries" else tile_path(int(level), index, width)
    pos, op, ch = edit
    pos %= len(path)
    if op == "delete":
        mutated = path[:pos] + path[pos + 1 :]
    elif op == "insert":
        mutated = path[:pos] + ch + path[pos:]
    else:
        mutated = path[:pos] + ch + path[pos + 1 :]
    _canonical_or_rejected(mutated)


# ------------------------------------------------------------------------- bundles


@PROPERTY
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=TILE_WIDTH))
def test_bundle_round_trip(entries: list[bytes]) -> None:
    """tlog-tiles entry bundles: uint16 big-endian length prefixes, decoded exactly."""
    data = encode_bundle(entries)
    assert len(data) == sum(2 + len(e) for e in entries)
    assert decode_bundle(data) == entries
    assert decode_bundle(data, len(entries)) == entries


def test_bundle_limits() -> None:
    big = b"\xab" * MAX_ENTRY_SIZE
    data = encode_bundle([big, b""])
    assert data[:2] == b"\xff\xff"
    assert decode_bundle(data) == [big, b""]
    with pytest.raises(ValueError, match="at most 65535"):
        encode_bundle([b"\x00" * (MAX_ENTRY_SIZE + 1)])
    with pytest.raises(ValueError, match=r"1\.\.256 entries"):
        encode_bundle([])
    with pytest.raises(ValueError, match=r"1\.\.256 entries"):
        encode_bundle([b""] * (TILE_WIDTH + 1))


@PROPERTY
@given(st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=20), st.data())
def test_bundle_truncation_rejected(entries: list[bytes], data: st.DataObject) -> None:
    """Strict decoding: any truncation is an error, never a shorter list."""
    encoded = encode_bundle(entries)
    cut = data.draw(st.integers(1, len(encoded) - 1))
    with pytest.raises(BadInput):
        decode_bundle(encoded[:cut], len(entries))


@pytest.mark.parametrize(
    ("data", "width", "message"),
    [
        (b"", None, "empty"),
        (b"\x00", None, "truncated in the length of entry #0"),
        (b"\x00\x03ab", None, "truncated in entry #0"),
        (b"\x00\x01a\x00", None, "truncated in the length of entry #1"),
        (b"\x00\x01a\x00\x00", 1, "has 2 entries, expected 1"),  # trailing bytes
        (b"\x00\x01a", 2, "has 1 entries, expected 2"),
        (b"\x00\x00" * (TILE_WIDTH + 1), None, "trailing bytes after 256 entries"),
    ],
)
def test_bundle_rejects(data: bytes, width: int | None, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        decode_bundle(data, width)


# ----------------------------------------------------------------- tiles of a tree


def _full(level: int, count: int) -> list[TileRef]:
    return [TileRef(level, i, TILE_WIDTH) for i in range(count)]


def test_tiles_for_edge_sizes() -> None:
    """tlog-tiles: per level, full tiles plus one partial of width floor(s/256**l) mod 256."""
    assert tiles_for_size(0) == []
    assert tiles_for_size(1) == [TileRef(0, 0, 1)]
    assert tiles_for_size(255) == [TileRef(0, 0, 255)]
    # "a tree of size 256 ... a full level 0 tile and a partial level 1 tile of width 1"
    assert tiles_for_size(256) == [TileRef(0, 0, 256), TileRef(1, 0, 1)]
    assert tiles_for_size(257) == [TileRef(0, 0, 256), TileRef(0, 1, 1), TileRef(1, 0, 1)]
    assert tiles_for_size(65536) == [*_full(0, 256), TileRef(1, 0, 256), TileRef(2, 0, 1)]
    assert tiles_for_size(65537) == [
        *_full(0, 256),
        TileRef(0, 256, 1),
        TileRef(1, 0, 256),
        TileRef(2, 0, 1),
    ]
    # The spec's example: size 70,000.
    assert tiles_for_size(70000) == [
        *_full(0, 273),
        TileRef(0, 273, 112),
        TileRef(1, 0, 256),
        TileRef(1, 1, 17),
        TileRef(2, 0, 1),
    ]
    with pytest.raises(ValueError, match="non-negative"):
        tiles_for_size(-1)


EDGE_SIZES = [0, 1, 255, 256, 257, 65535, 65536, 65537]


@pytest.mark.parametrize("old", EDGE_SIZES)
@pytest.mark.parametrize("new", EDGE_SIZES)
def test_tiles_touched_edge_sizes(old: int, new: int) -> None:
    """Growing the log writes exactly the tiles the new tree has and the old did not."""
    if new < old:
        with pytest.raises(ValueError, match="cannot shrink"):
            tiles_touched(old, new)
        return
    touched = tiles_touched(old, new)
    assert touched == sorted(set(tiles_for_size(new)) - set(tiles_for_size(old)))


def test_tiles_touched_examples() -> None:
    assert tiles_touched(255, 256) == [TileRef(0, 0, 256), TileRef(1, 0, 1)]
    assert tiles_touched(256, 257) == [TileRef(0, 1, 1)]
    assert tiles_touched(65536, 65537) == [TileRef(0, 256, 1)]
    assert tiles_touched(5, 5) == []


@PROPERTY
@given(st.lists(st.integers(0, 3000), min_size=1, max_size=6))
def test_tiles_touched_grows_to_full_set(steps: list[int]) -> None:
    """Writing touched tiles at each growth step leaves every tile of the final tree."""
    size, written = 0, set[TileRef]()
    for step in steps:
        new = size + step
        touched = tiles_touched(size, new)
        assert touched == sorted(set(tiles_for_size(new)) - set(tiles_for_size(size)))
        assert written.isdisjoint(touched)  # never rewrite an object
        written.update(touched)
        size = new
    assert set(tiles_for_size(size)) <= written


def test_tile_width() -> None:
    assert tile_width(0, 0, 70000) == 256
    assert tile_width(0, 273, 70000) == 112
    assert tile_width(0, 274, 70000) == 0
    assert tile_width(1, 1, 70000) == 17
    assert tile_width(2, 0, 70000) == 1
    assert tile_width(3, 0, 70000) == 0


# -------------------------------------------------------------- tile hash source

MAX_N = 70000


@cache
def _source() -> MemoryHashSource:
    # Perfect subtrees are shared by all prefix trees: one source serves every size.
    return MemoryHashSource(leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_N))


def _reader(size: int, src: MemoryHashSource) -> tuple[Callable[[int, int, int], bytes], list[int]]:
    """A tile reader for the tree of ``size`` that only serves tiles that tree has."""
    exists = set(tiles_for_size(size))
    reads = [0]

    def read_tile(level: int, index: int, width: int) -> bytes:
        assert TileRef(level, index, width) in exists, (level, index, width, size)
        reads[0] += 1
        return tile_hashes(level, index, width, src)

    return read_tile, reads


@st.composite
def _size_index(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.one_of(st.integers(1, MAX_N), st.sampled_from([1, 255, 256, 257, 65536])))
    return size, draw(st.integers(0, size - 1)), draw(st.integers(0, size))


@PROPERTY
@given(_size_index())
def test_tile_source_matches_memory(case: tuple[int, int, int]) -> None:
    """F2-i-A-4: proofs served from tiles equal proofs computed from all hashes."""
    size, index, old = case
    src = _source()
    read_tile, _ = _reader(size, src)
    tiles = TileHashSource(read_tile, size, cache_tiles=4)
    want_root = root(src, size)
    assert root(tiles, size) == want_root
    proof = inclusion_proof(tiles, index, size)
    assert proof == inclusion_proof(src, index, size)
    verify_inclusion(src.node(0, index), index, size, proof, want_root)
    cproof = consistency_proof(tiles, old, size)
    assert cproof == consistency_proof(src, old, size)
    verify_consistency(old, size, root(src, old), want_root, cproof)


def test_tile_source_rejects_bad_tiles_and_nodes() -> None:
    src = _source()
    tiles = TileHashSource(lambda level, index, width: b"\x00" * 31, 1000)
    with pytest.raises(BadInput, match=r"tile tile/0/000 is 31 bytes, expected 8192"):
        tiles.node(0, 0)
    read_tile, _ = _reader(1000, src)
    tiles = TileHashSource(read_tile, 1000)
    assert tiles.size == 1000
    assert tiles.node(9, 0) == src.node(9, 0)
    with pytest.raises(ValueError, match="no complete subtree"):
        tiles.node(10, 0)  # 1024 leaves
    with pytest.raises(ValueError, match="no complete subtree"):
        tiles.node(3, 125)  # leaves 1000..1007
    with pytest.raises(ValueError, match="cache_tiles"):
        TileHashSource(read_tile, 1000, cache_tiles=0)


BIG = 1_000_000


@pytest.fixture(scope="module")
def big_tiles() -> tuple[MemoryHashSource, dict[tuple[int, int, int], bytes]]:
    """A 1,000,000-leaf tree and all its tiles (leaf hashes are arbitrary 32-byte values)."""
    src = MemoryHashSource(i.to_bytes(32, "big") for i in range(BIG))
    store = {(t.level, t.index, t.width): tile_hashes(t.level, t.index, t.width, src)
             for t in tiles_for_size(BIG)}  # fmt: skip
    return src, store


@pytest.mark.parametrize("index", [0, 1, 255, 65535, 123_456, 500_000, 999_935, 999_999])
def test_big_tree_proof_reads_few_tiles(
    big_tiles: tuple[MemoryHashSource, dict[tuple[int, int, int], bytes]], index: int
) -> None:
    """F2-i-A-4: a proof in a 1,000,000-entry log needs only a handful of tile reads.

    (Counting reads instead of timing keeps the test deterministic; each read is
    one object fetch in production.)
    """
    src, store = big_tiles
    reads: list[tuple[int, int, int]] = []

    def read_tile(level: int, tile_index: int, width: int) -> bytes:
        reads.append((level, tile_index, width))
        return store[(level, tile_index, width)]

    tiles = TileHashSource(read_tile, BIG)
    proof = inclusion_proof(tiles, index, BIG)
    assert proof == inclusion_proof(src, index, BIG)
    verify_inclusion(src.node(0, index), index, BIG, proof, root(src, BIG))
    assert len(reads) <= 6
    assert len(set(reads)) == len(reads)  # the cache answers repeats

    reads.clear()
    cproof = consistency_proof(TileHashSource(read_tile, BIG), index + 1, BIG)
    assert cproof == consistency_proof(src, index + 1, BIG)
    assert len(reads) <= 6
