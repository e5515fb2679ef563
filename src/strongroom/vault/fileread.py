"""Reading files for a backup: in worker threads, or in worker processes.

A group of files is read whole, hashed, cut (FastCDC), looked up and sealed by
:func:`read_files`, with the same code whether it runs in one of the appender's threads
or in a worker process. Processes exist because of the GIL: zstd, AES-GCM and the
hashes release it, but the Python around each small file (opening, reading, hashing,
sealing calls) does not, and with tens of thousands of small files that work is what
limits a backup on two cores. A process is forked before the appender starts any
thread and dies with its parent; it gets the two keys it needs (the chunk-id key
and the current data key) once, through its initializer, and its own read-only
connection to the catalog for deduplication lookups; it returns sealed blobs, never
plaintext, and the main process lays them into packs.

The sealed blobs travel through an :class:`Arena` of shared memory, not the result
pipe: through the pipe every byte was pickled, written, read by the pool's result
thread (which needs the GIL for each piece) and unpickled, and the two workers queued
on the pipe's lock — nearly half of their time. Each job gets its own slot of the
arena from the main process and returns only offsets.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import grp
import hashlib
import json
import mmap
import multiprocessing
import os
import pwd
import signal
import sqlite3
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pyfastcdc import FastCDC

from strongroom.catalog import CHUNK_SQL, DEDUP_MIN
from strongroom.crypto import ChunkHasher, DataKey
from strongroom.vault.ingest import CDC_AVG, CDC_MAX, CDC_MIN, SMALL
from strongroom.vault.packs import BlobRef, encode_blob, seal_blob
from strongroom.vault.snapshot import put_bytes, show

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
RETRIES = 3
MEDIUM = 2 << 20  # files up to this size are read whole and cut by a worker
_local = threading.local()


def _cdc() -> FastCDC:
    """This thread's chunker (the same parameters as every record's content)."""
    cdc: FastCDC | None = getattr(_local, "cdc", None)
    if cdc is None:
        cdc = _local.cdc = FastCDC(avg_size=CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX)
    return cdc


READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ctime_ns, a.st_ino) == (
        b.st_size,
        b.st_mtime_ns,
        b.st_ctime_ns,
        b.st_ino,
    )


@dataclass(slots=True)
class _Read:
    """What a worker made of one small file."""

    st: os.stat_result | None = None
    sha256: str = ""
    # per chunk: keyed id, where it already is (or None), sealed blob if new, length
    chunks: list[tuple[bytes, BlobRef | None, bytes | None, int]] = field(default_factory=list)
    size: int = 0
    changed: bool = False
    error: str = ""
    big: bool = False  # grew past MEDIUM: the main thread streams it
    xattrs: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    head: bytes = b""  # the file's manifest line up to its chunk list (see read_files)
    # chunk index -> (offset, length) of its sealed blob in the job's arena slot (the
    # chunk's own entry then has neither a known place nor a blob)
    shared: dict[int, tuple[int, int]] = field(default_factory=dict)

    def sealed(self, i: int, view: memoryview | None) -> bytes | memoryview | None:
        """Chunk ``i``'s sealed blob, wherever it travelled (None when already known)."""
        at = self.shared.get(i)
        if at is None:
            return self.chunks[i][2]
        assert view is not None
        return view[at[0] : at[0] + at[1]]


class Arena:
    """Shared memory for the workers' sealed blobs: ``slots`` slots of ``slot_size``
    bytes, one per job in flight. It is anonymous (``MAP_SHARED | MAP_ANONYMOUS``, made
    before the workers are forked, so they inherit it): no name to leak if a process is
    killed, gone with the last process that maps it. A job whose blobs do not fit its
    slot (files that grew after the walk) returns the rest through the pipe."""

    def __init__(self, slots: int, slot_size: int) -> None:
        self.mem = mmap.mmap(-1, slots * slot_size)
        self.slot_size = slot_size
        self.free = list(range(slots - 1, -1, -1))
        self.view: memoryview | None = memoryview(self.mem)

    def take(self) -> int:
        """A free slot, or -1 (the job's blobs then come through the pipe)."""
        return self.free.pop() if self.free else -1

    def give(self, slot: int) -> None:
        if slot >= 0:
            self.free.append(slot)

    def close(self) -> None:
        if self.view is not None:
            self.view.release()
            self.view = None
        with contextlib.suppress(BufferError):  # a slice still held: unmapped when collected
            self.mem.close()


_NAMES: dict[tuple[str, int], str | None] = {}


def _name(kind: str, ident: int) -> str | None:
    key = (kind, ident)
    if key not in _NAMES:
        try:
            _NAMES[key] = (
                pwd.getpwuid(ident).pw_name if kind == "u" else grp.getgrgid(ident).gr_name
            )
        except KeyError:
            _NAMES[key] = None
    return _NAMES[key]


def describe(rel: bytes, st: os.stat_result, kind: str) -> dict[str, Any]:
    """The fields every manifest node has (docs/formats/snapshot.md), from a stat."""
    node: dict[str, Any] = {"type": kind}
    put_bytes(node, "path", rel or b".")
    node["mode"] = stat.S_IMODE(st.st_mode)
    node["uid"], node["gid"] = st.st_uid, st.st_gid
    user, group = _name("u", st.st_uid), _name("g", st.st_gid)
    if user:
        node["user"] = user
    if group:
        node["group"] = group
    node["mtime_ns"], node["ctime_ns"] = st.st_mtime_ns, st.st_ctime_ns
    node["inode"] = st.st_ino
    return node


def _read_xattrs(fd: int, path: bytes, r: _Read) -> dict[str, str]:
    """Extended attributes of an open file."""
    try:
        names = os.listxattr(fd)
    except OSError:
        return {}
    out: dict[str, str] = {}
    for n in sorted(names):
        try:
            out[n] = base64.b64encode(os.getxattr(fd, n)).decode()
        except OSError as e:
            r.warnings.append(
                f"{show(path)}: cannot read extended attribute {n}: {e.strerror or e}"
            )
    return out


def read_files(
    paths: list[bytes],
    places: list[Any],
    prepare: Callable[[Any, bytes], tuple[bytes, BlobRef | None, bytes | None]],
    after_read: Callable[[bytes], None] | None = None,
) -> list[_Read]:
    """Read, hash, cut, look up and seal a group of files (a worker thread or process).

    Each file is read whole between two ``fstat`` calls, and again (up to
    :data:`RETRIES` times) if its size, times or inode moved meanwhile. ``prepare(place,
    chunk)`` gives a chunk's keyed id, where it already is, or its sealed blob for
    ``place`` (the pack it is planned into).
    """
    out = []
    for path, place in zip(paths, places, strict=True):
        r = _Read()
        data = b""
        for attempt in range(RETRIES):
            try:
                fd = os.open(path, READ_FLAGS)
            except OSError as e:
                r.error = f"cannot open: {e.strerror or e}"
                break
            try:
                before = os.fstat(fd)
                if not stat.S_ISREG(before.st_mode):
                    r.error = "replaced by something that is not a file"
                    break
                parts = []
                got = 0
                while got <= MEDIUM:
                    b = os.read(fd, min(MEDIUM + 1 - got, max(before.st_size + 1 - got, 1)))
                    if not b:
                        break
                    parts.append(b)
                    got += len(b)
                data = b"".join(parts)
                if after_read is not None:
                    after_read(path)
                after = os.fstat(fd)
                r.xattrs = _read_xattrs(fd, path, r)
            except OSError as e:
                r.error = f"read error: {e.strerror or e}"
                break
            finally:
                os.close(fd)
            r.st = after
            r.changed = not (_same(before, after) and len(data) == after.st_size)
            if not r.changed:
                break
            del attempt
        if r.error or len(data) > MEDIUM:
            r.big = not r.error
            out.append(r)
            continue
        r.size = len(data)
        r.sha256 = hashlib.sha256(data).hexdigest()
        # the line is written here, where the work runs beside the main thread; the main
        # thread appends the chunk list once it knows where each chunk went
        assert r.st is not None
        node = describe(path.lstrip(b"/"), r.st, "file")
        node["size"], node["sha256"] = r.size, r.sha256
        if r.xattrs:
            node["xattrs"] = r.xattrs
        if r.changed:
            node["changed"] = True
        r.head = json.dumps(node, ensure_ascii=False, separators=(",", ":")).encode()[:-1]
        pieces = [data] if len(data) <= SMALL else [bytes(c.data) for c in _cdc().cut_buf(data)]
        for piece in pieces:
            if piece:
                r.chunks.append((*prepare(place, piece), len(piece)))
        out.append(r)
    return out


class _Prepare:
    """A worker process's ``prepare``: keyed id, catalog lookup, seal for the pack."""

    def __init__(self, chunk_key: bytes, key_id: str, key: bytes, catalog: str) -> None:
        self.hasher = ChunkHasher(chunk_key)
        self.key = DataKey(key_id, key)
        self.db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)

    def __call__(self, pack: str, data: bytes) -> tuple[bytes, BlobRef | None, bytes | None]:
        cid = self.hasher.chunk_id(data)
        if len(data) >= DEDUP_MIN:
            row = self.db.execute(CHUNK_SQL, (cid,)).fetchone()
            if row is not None:
                return cid, BlobRef(str(row[0]), int(row[1]), int(row[2]), int(row[3])), None
        return cid, None, seal_blob(self.key, pack, cid, encode_blob(data))


def _die_with(parent: int) -> None:
    """In a forked worker that holds keys: have the kernel kill it when ``parent`` dies
    (``PR_SET_PDEATHSIG``), or exit now if that cannot be promised or ``parent`` is
    already gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != parent:
        os._exit(1)


def _init_forked(parent: int, init: Callable[..., None], args: tuple[Any, ...]) -> None:
    _die_with(parent)
    init(*args)


def _ready() -> int:
    """A no-op job: waiting for one per worker makes the pool start them all now."""
    return os.getpid()


def forked_workers(init: Callable[..., None], *args: Any) -> ProcessPoolExecutor:
    """Two worker processes, forked now (call it before starting threads, so that no
    lock is held across the fork), each running ``init(*args)`` first and each killed
    by the kernel when this process dies: workers hold the vault's keys and must never
    outlive a killed command. With the fork start method ``args`` are this process's
    own objects (an opened vault, a shared mapping), not pickled copies."""
    pool = ProcessPoolExecutor(
        max_workers=2,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_init_forked,
        initargs=(os.getpid(), init, args),
    )
    for f in [pool.submit(_ready) for _ in range(2)]:
        f.result()
    return pool


_worker: dict[str, _Prepare] = {}  # this process's, once initialised
_arena: list[Arena] = []  # the arena this worker was forked with


def init_worker(chunk_key: bytes, key_id: str, key: bytes, catalog: str, arena: Arena) -> None:
    """Initializer of a backup worker (see :func:`forked_workers`)."""
    _worker["prepare"] = _Prepare(chunk_key, key_id, key, catalog)
    _arena[:] = [arena]


def read_in_worker(paths: list[bytes], packs: list[str], slot: int) -> list[_Read]:
    """A group of files, read in a worker process (``packs``: where each is planned);
    their sealed blobs go to arena slot ``slot`` as far as they fit."""
    out = read_files(paths, packs, _worker["prepare"])
    if slot < 0:
        return out
    arena = _arena[0]
    pos = slot * arena.slot_size
    end = pos + arena.slot_size
    mem = arena.mem
    for r in out:
        for i, (cid, known, sealed, n) in enumerate(r.chunks):
            if sealed is not None and pos + len(sealed) <= end:
                mem[pos : pos + len(sealed)] = sealed
                r.shared[i] = (pos, len(sealed))
                r.chunks[i] = (cid, known, None, n)
                pos += len(sealed)
    return out
