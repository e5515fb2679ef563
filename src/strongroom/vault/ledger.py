"""The ledger on the store: entry bundles, hash tiles and signed checkpoints.

Layout (C2SP tlog-tiles, tile height 8; docs/formats/ledger.md):

- ``tile/entries/<N>[.p/<W>]`` — entry bundles (authoritative: the entries themselves)
- ``tile/<L>/<N>[.p/<W>]`` — hash tiles (derived from the entries; a cache for proofs)
- ``checkpoints/<size, 20 digits>`` — signed notes (C2SP tlog-checkpoint), one per
  commit. tlog-tiles serves a single mutable ``checkpoint``; on a write-once store we
  keep every checkpoint instead, and the latest is the one with the largest size.

Every object is created once and never rewritten: partial tiles and bundles of each
width are distinct names. A commit writes bundles, then tiles, then the checkpoint.
The bundles define the ledger: after a crash, :meth:`Ledger.open` rolls forward to
the longest run of durable bundles, writes any tiles that are missing and signs a
checkpoint for it. Records whose entries were durable but not yet acknowledged are
therefore kept (at-least-once); re-ingest deduplicates them.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from strongroom.core import merkle
from strongroom.core.checkpoint import Checkpoint, open_note, sign
from strongroom.core.tiles import (
    TileHashSource,
    TileRef,
    decode_bundle,
    encode_bundle,
    entries_path,
    tile_path,
    tiles_touched,
)
from strongroom.errors import BadInput, CorruptVault, NotFound
from strongroom.store.base import Store

WIDTH = 256
HASH = 32
CHECKPOINT_PREFIX = "checkpoints/"
_PARTIAL = re.compile(r"\.p/(\d+)$")


def checkpoint_name(size: int) -> str:
    return f"{CHECKPOINT_PREFIX}{size:020d}"


class Ledger:
    """Append-only log of entries with gapless serials (the leaf index)."""

    def __init__(
        self,
        store: Store,
        origin: str,
        public_key: Ed25519PublicKey,
        retain_until: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.origin = origin
        self.public_key = public_key
        self._retain_until = retain_until
        self.size = 0
        self.checkpoint_size = 0
        # why the ledger must not be appended to (bundles missing below a checkpoint, a
        # rollback seen on open ...); verify still runs and reports it
        self.damaged: str | None = None
        self._entry_edge: list[bytes] = []
        self._edges: list[list[bytes]] = []  # per tile level: hashes of the partial tile
        self._pending: list[bytes] = []
        self._cache: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()
        self._last_bundle: tuple[int, list[bytes]] = (-1, [])  # see entry()

    # --- opening and recovery -----------------------------------------------------------

    def latest_checkpoint_size(self) -> int:
        best = 0
        for name in self.store.list(CHECKPOINT_PREFIX):
            tail = name[len(CHECKPOINT_PREFIX) :]
            if len(tail) == 20 and tail.isdigit():
                best = max(best, int(tail))
        return best

    def _durable_size(self, start: int) -> int:
        """Longest run of bundles present on the store, starting at bundle ``start``."""
        b = start // WIDTH
        while self.store.exists(entries_path(b)):
            b += 1
        widths = [0]
        for name in self.store.list(entries_path(b) + ".p/"):
            m = _PARTIAL.search(name)
            if m:
                widths.append(int(m.group(1)))
        return b * WIDTH + max(widths)

    def open(self, signer: Ed25519PrivateKey | None) -> int:
        """Load state; roll forward past a crash. Returns how many entries were recovered."""
        self.checkpoint_size = self.latest_checkpoint_size()
        size = self._durable_size(0 if self.checkpoint_size == 0 else self.checkpoint_size)
        if size < self.checkpoint_size:
            # bundles were removed below a signed checkpoint: tampering; verify names it
            self.damaged = (
                f"the ledger holds {size} entries but was checkpointed at {self.checkpoint_size}"
            )
        self.size = size
        self._load_edges()
        recovered = max(0, size - self.checkpoint_size)
        if recovered and signer is not None:
            self._write_missing(tiles_touched(self.checkpoint_size, size))
            self._write_checkpoint(signer)
        return recovered

    def _load_edges(self) -> None:
        n = self.size
        self._entry_edge = self.bundle(n // WIDTH, n % WIDTH) if n % WIDTH else []
        self._edges = []
        level = 0
        while (n >> (8 * level)) > 0:
            count = n >> (8 * level)
            w = count % WIDTH
            tile = self.read_tile(level, count // WIDTH, w) if w else b""
            self._edges.append([tile[i : i + HASH] for i in range(0, len(tile), HASH)])
            level += 1

    def _write_missing(self, tiles: list[TileRef]) -> None:
        """Roll forward: the hash tiles (and bundles) a crash left unwritten."""
        until = self._retain_until()
        for t in tiles:
            if t.level == 0 and not self.store.exists(t.entries_path()):
                self.store.put(
                    t.entries_path(),
                    encode_bundle(self.bundle(t.index, t.width)),
                    retain_until=until,
                )
            if not self.store.exists(t.path()):
                self.store.put(t.path(), self._compute(t), retain_until=until)

    # --- reading ------------------------------------------------------------------------

    def bundle(self, index: int, width: int) -> list[bytes]:
        """Entries of bundle ``index``, the first ``width`` of them."""
        if index == self.size // WIDTH and width <= len(self._entry_edge) and self._entry_edge:
            return self._entry_edge[:width]
        for w in (width, WIDTH) if width != WIDTH else (WIDTH,):
            try:
                data = self.store.get(entries_path(index, w))
            except NotFound:
                continue
            entries = decode_bundle(data)
            if len(entries) != w:
                raise CorruptVault(f"entry bundle {entries_path(index, w)} holds {len(entries)}")
            return entries[:width]
        # a partial of this width was never written: any wider partial has it as a prefix
        for name in self.store.list(entries_path(index) + ".p/"):
            m = _PARTIAL.search(name)
            if m and int(m.group(1)) > width:
                return decode_bundle(self.store.get(name))[:width]
        raise CorruptVault(
            f"ledger entries {index * WIDTH}..{index * WIDTH + width - 1} are missing "
            f"(bundle {entries_path(index, width)})"
        )

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        end = self.size if end is None else end
        serial = start
        while serial < end:
            b = serial // WIDTH
            top = min(end, (b + 1) * WIDTH)
            avail = min(self.size - b * WIDTH, WIDTH)
            for i, e in enumerate(self.bundle(b, avail)[serial - b * WIDTH : top - b * WIDTH]):
                yield serial + i, e
            serial = top

    def entry(self, serial: int) -> bytes:
        """One entry (reading a record). The last full bundle read here is kept: full
        bundles are immutable, and reading records in order would otherwise decode the
        same bundle for each of its 256 entries. (``entries``, which verify uses,
        always reads the store.)"""
        if not 0 <= serial < self.size:
            raise NotFound(f"no ledger entry {serial}: the ledger has {self.size}")
        b = serial // WIDTH
        if (b + 1) * WIDTH > self.size:
            return next(self.entries(serial, serial + 1))[1]
        if self._last_bundle[0] != b:
            self._last_bundle = (b, self.bundle(b, WIDTH))
        return self._last_bundle[1][serial - b * WIDTH]

    def read_tile(self, level: int, index: int, width: int) -> bytes:
        """A hash tile's bytes: from memory, the store, or computed from below."""
        key = (level, index, width)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        count = self.size >> (8 * level)
        if (
            index == count // WIDTH
            and level < len(self._edges)
            and width <= len(self._edges[level])
        ):
            return b"".join(self._edges[level][:width])
        try:
            data = self.store.get(tile_path(level, index, width))
            if len(data) != width * HASH:
                raise CorruptVault(f"hash tile {tile_path(level, index, width)} has a bad size")
        except NotFound:
            data = self._compute(TileRef(level, index, width))
        self._cache[key] = data
        if len(self._cache) > 256:
            self._cache.popitem(last=False)
        return data

    def _compute(self, t: TileRef) -> bytes:
        """A hash tile's bytes, computed from the tiles below or from the entries."""
        if t.level == 0:
            return b"".join(merkle.leaf_hash(e) for e in self.bundle(t.index, t.width))
        out = []
        for k in range(t.width):
            below = self.read_tile(t.level - 1, t.index * WIDTH + k, WIDTH)
            out.append(_perfect_root(below))
        return b"".join(out)

    # --- hashing and proofs -------------------------------------------------------------

    def source(self, size: int | None = None) -> merkle.HashSource:
        return TileHashSource(self.read_tile, self.size if size is None else size)

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size == self.size:
            return self._edge_root()
        return merkle.root(self.source(size), size)

    def _edge_root(self) -> bytes:
        parts: list[bytes] = []
        for level in reversed(range(len(self._edges))):
            edge = self._edges[level]
            pos = 0
            for j in reversed(range(8)):
                if len(edge) & (1 << j):
                    parts.append(_perfect_root(b"".join(edge[pos : pos + (1 << j)])))
                    pos += 1 << j
        if not parts:
            return merkle.EMPTY_ROOT
        h = parts[-1]
        for p in reversed(parts[:-1]):
            h = merkle.node_hash(p, h)
        return h

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        return merkle.inclusion_proof(self.source(size), index, size)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = self.size if new is None else new
        return merkle.consistency_proof(self.source(new), old, new)

    # --- appending ----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, entry: bytes) -> int:
        """Queue an entry; returns its serial. Durable only after :meth:`commit`."""
        if self.damaged is not None:
            raise CorruptVault(
                f"refusing to write to a damaged ledger: {self.damaged}",
                "Run 'strongroom verify' to see what is affected; restore from a replica.",
            )
        self._pending.append(entry)
        return self.size + len(self._pending) - 1

    def discard_pending(self) -> None:
        self._pending.clear()

    def commit(self, signer: Ed25519PrivateKey) -> bytes | None:
        """Write queued entries, their tiles and a signed checkpoint. Returns the note."""
        if not self._pending:
            return None
        old, new = self.size, self.size + len(self._pending)
        writes: list[tuple[str, bytes]] = []
        entry_edge, edges = list(self._entry_edge), [list(e) for e in self._edges]
        for i, e in enumerate(self._pending):
            serial = old + i
            entry_edge.append(e)
            if len(entry_edge) == WIDTH:
                writes.append((entries_path(serial // WIDTH), encode_bundle(entry_edge)))
                entry_edge = []
            _push(edges, 0, merkle.leaf_hash(e), serial + 1, writes)
        if entry_edge:
            writes.append((entries_path(new // WIDTH, len(entry_edge)), encode_bundle(entry_edge)))
        for level, edge in enumerate(edges):
            if edge and (old >> (8 * level)) != (new >> (8 * level)):
                count = new >> (8 * level)
                writes.append((tile_path(level, count // WIDTH, len(edge)), b"".join(edge)))
        until = self._retain_until()
        # entries first (they are the ledger), then the derived tiles
        bundles = [w for w in writes if w[0].startswith("tile/entries/")]
        self.store.put_many(bundles, retain_until=until)
        self.store.put_many([w for w in writes if w not in bundles], retain_until=until)
        self.size, self._entry_edge, self._edges = new, entry_edge, edges
        self._pending.clear()
        return self._write_checkpoint(signer)

    def _write_checkpoint(self, signer: Ed25519PrivateKey) -> bytes:
        note = sign(Checkpoint(self.origin, self.size, self.root()), self.origin, signer)
        self.store.put(checkpoint_name(self.size), note, retain_until=self._retain_until())
        self.checkpoint_size = self.size
        return note

    def checkpoint_note(self, size: int | None = None) -> bytes:
        size = self.checkpoint_size if size is None else size
        return self.store.get(checkpoint_name(size))

    def read_checkpoint(self, size: int) -> Checkpoint:
        return open_note(self.checkpoint_note(size), [(self.origin, self.public_key)])


def _push(
    edges: list[list[bytes]],
    level: int,
    h: bytes,
    count_leaves: int,
    writes: list[tuple[str, bytes]],
) -> None:
    """Append hash ``h`` at tile level ``level``; emit full tiles as they complete."""
    while len(edges) <= level:
        edges.append([])
    edges[level].append(h)
    if len(edges[level]) == WIDTH:
        tile = b"".join(edges[level])
        count = count_leaves >> (8 * level)
        writes.append((tile_path(level, count // WIDTH - 1), tile))
        edges[level] = []
        _push(edges, level + 1, _perfect_root(tile), count_leaves, writes)


def _perfect_root(hashes: bytes) -> bytes:
    """Root of a perfect subtree given its bottom row of 2^k hashes (concatenated)."""
    if not hashes:
        raise BadInput("empty hash row")
    return merkle.root_from_leaf_hashes([hashes[i : i + HASH] for i in range(0, len(hashes), HASH)])
