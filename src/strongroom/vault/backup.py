"""Backups: a snapshot of directory trees or of a stream, stored as one record.

The walk (main thread) reads each directory in name order and ``lstat``s every entry.
A regular file whose size, mtime, ctime and inode equal those in the **file cache**
(the previous snapshot of the same source, kept decrypted in the state directory and
rebuilt from that snapshot when missing or stale) keeps its chunk list without being
read. Other files up to :data:`SMALL` bytes are read, hashed, deduplicated, compressed
and sealed on the appender's worker threads in groups; larger ones are streamed through
FastCDC as any large record. Every chunk goes into a pack of the snapshot's expiry
bucket, with a retain-until of the snapshot's plus the lock margin; every pack the
snapshot reuses is extended (by the appender) to at least the snapshot's retain-until,
plus the margin — so a daily backup extends a reused pack about once per margin, not
every day. The snapshot record lists all those packs as its ``refs``: the catalog,
holds, disposal and ``verify`` treat them as the snapshot's own.

A file is read between two ``fstat`` calls; if its size, mtime or ctime moved, it is
read again (up to :data:`RETRIES` times) and, if it never holds still, what was read is
kept and the node is marked ``"changed": true`` and reported — never silently torn.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import io
import json
import os
import re
import socket
import stat
import struct
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import zstandard

from strongroom.core.retention import format_time
from strongroom.errors import BadInput, CorruptVault
from strongroom.vault.config import write_atomic
from strongroom.vault.fileread import (
    MEDIUM,
    READ_FLAGS,
    RETRIES,
    Arena,
    _Read,
    _same,
    describe,
    forked_workers,
    init_worker,
    read_files,
    read_in_worker,
)
from strongroom.vault.ingest import (
    Appender,
    AppendResult,
    Item,
    Prepend,
)
from strongroom.vault.packs import BlobRef, PackWriter, bucket_of
from strongroom.vault.snapshot import (
    FORMAT,
    MAX_PATH,
    SNAPSHOT_CLASS,
    VERSION,
    check_path,
    encode_line,
    get_bytes,
    iter_lines,
    parse_header,
    put_bytes,
    show,
    type_of,
)
from strongroom.vault.vault import Vault

LOCK_MARGIN = timedelta(days=10)
GROUP_FILES = 64  # files read and sealed per worker job
GROUP_BYTES = 4 << 20
JOBS_IN_FLIGHT = 8
BYTES_IN_FLIGHT = 32 << 20  # read by workers and not yet taken into packs
COMMIT_BYTES = 1 << 30  # new data between intermediate commits (progress survives a crash)
MAX_WARNINGS = 100
_LIVE_PACKS = "SELECT name FROM packs WHERE deleted_serial IS NULL AND name IN ({})"


@dataclass(slots=True)
class BackupResult:
    snapshot: str
    serial: int
    retain_until: datetime
    parent: str | None
    files: int = 0
    dirs: int = 0
    other: int = 0
    bytes: int = 0
    unchanged: int = 0
    new_bytes: int = 0
    stored_bytes: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot,
            "serial": self.serial,
            "retain_until": format_time(self.retain_until),
            "parent": self.parent,
            "files": self.files,
            "dirs": self.dirs,
            "other": self.other,
            "bytes": self.bytes,
            "unchanged_files": self.unchanged,
            "new_bytes": self.new_bytes,
            "stored_bytes": self.stored_bytes,
            "warnings": self.warnings,
        }


def default_source() -> str:
    """The host name as a source label (``a-z 0-9 . _ -``)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", socket.gethostname().lower()).strip("-.")
    return (name or "host")[:64]


@dataclass(slots=True)
class _Job:
    paths: list[bytes]
    writers: list[PackWriter]
    future: Future[list[_Read]] | None = None
    size: int = 0
    slot: int = -1  # its arena slot (worker processes)


class FileCache:
    """The files of the last snapshot of a source: path -> (size, mtime, ctime, inode,
    packs, node line). A file whose ``lstat`` shows the same four values is unchanged —
    content and metadata, since any change moves its ctime — and its manifest line is
    reused as it was, without reading the file.

    Derived only: kept in ``<state>/files/<source key>.cache`` and rebuilt from the
    snapshot itself when missing, unreadable or for another snapshot. It is trusted as
    the catalog is (both are this host's local state); ``backup --force`` ignores it.
    The format is a small binary one (docs/formats/state.md), because parsing 60,000
    JSON lines costs more than the rest of an incremental backup's bookkeeping.
    """

    MAGIC = b"SRFILECACHE1\n"
    _ROW = struct.Struct(">HQqqQHI")  # path len, size, mtime, ctime, inode, packs, line len

    def __init__(self, snapshot: str, spill: bool = False) -> None:
        self.snapshot = snapshot
        self.files: dict[bytes, tuple[int, int, int, int, tuple[str, ...], bytes]] = {}
        # a cache being written by a backup goes to a temp file as it grows, not into
        # memory (60,000 files: ~40 MB of lines)
        self._spill: IO[bytes] | None = tempfile.TemporaryFile() if spill else None  # noqa: SIM115
        self._packs: dict[str, int] = {}
        self._pending: list[bytes] = []
        # a file's packs (most files: the same one as many others) -> (count, encoded
        # indexes): one dict lookup per entry instead of encoding them each time
        self._encoded: dict[tuple[str, ...], tuple[int, bytes]] = {}

    def put(self, p: bytes, entry: tuple[int, int, int, int, tuple[str, ...], bytes]) -> None:
        if self._spill is None:
            self.files[p] = entry
            return
        size, mtime, ctime, ino, ps, line = entry
        enc = self._encoded.get(ps)
        if enc is None:
            idx = [self._packs.setdefault(x, len(self._packs)) for x in ps]
            enc = self._encoded[ps] = (len(idx), struct.pack(f">{len(idx)}I", *idx))
        self._pending += (
            self._ROW.pack(len(p), size, mtime, ctime, ino, enc[0], len(line)),
            p,
            enc[1],
            line,
        )
        if len(self._pending) >= 4096:
            self._spill.write(b"".join(self._pending))
            self._pending.clear()

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()

    @staticmethod
    def path(vault: Vault, source_key: str) -> Path:
        return vault.state / "files" / f"{source_key[:32]}.cache"

    def add(self, node: dict[str, Any], line: bytes) -> None:
        if node.get("type") != "file" or node.get("changed") or node.get("error"):
            return
        p = get_bytes(node, "path")
        if p is None:
            return
        key = (node.get("size"), node.get("mtime_ns"), node.get("ctime_ns"), node.get("inode"))
        if not all(isinstance(x, int) for x in key):
            return
        packs = tuple(sorted({c[0] for c in node.get("chunks", ())}))
        self.put(p, (*key, packs, line))  # type: ignore[arg-type]

    @staticmethod
    def from_manifest(snapshot: str, f: IO[bytes]) -> FileCache:
        cache = FileCache(snapshot)
        lines = iter_lines(f)
        parse_header(next(lines, b"{}"))
        for line in lines:
            if b'"type":"file"' in line:
                cache.add(json.loads(line), line)
        return cache

    def save(self, target: Path) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
            files, self.files = self.files, {}
            for p, entry in files.items():
                self.put(p, entry)
        head = json.dumps({"snapshot": self.snapshot, "packs": list(self._packs)}).encode()
        self._spill.write(b"".join(self._pending))
        self._pending.clear()
        z = zstandard.ZstdCompressor(level=1, write_checksum=True).compressobj()
        out = [self.MAGIC, z.compress(struct.pack(">I", len(head)) + head)]
        self._spill.seek(0)
        for block in iter(lambda: self._spill.read(1 << 20), b""):  # type: ignore[union-attr]
            out.append(z.compress(block))
        out.append(z.flush())
        self.close()
        target.parent.mkdir(mode=0o700, exist_ok=True)
        write_atomic(target, b"".join(out))

    @staticmethod
    def load(source: Path) -> FileCache | None:
        try:
            raw = source.read_bytes()
            if not raw.startswith(FileCache.MAGIC):
                return None
            # written as a stream: the frame does not carry its size
            data = (
                zstandard.ZstdDecompressor().decompressobj().decompress(raw[len(FileCache.MAGIC) :])
            )
            (n,) = struct.unpack_from(">I", data)
            head = json.loads(data[4 : 4 + n])
            cache, packs = FileCache(str(head["snapshot"])), list(head["packs"])
            pos, row, files = 4 + n, FileCache._ROW, cache.files
            # one tuple of pack names per distinct index list, shared by its files
            names: dict[tuple[int, ...], tuple[str, ...]] = {}
            while pos < len(data):
                plen, size, mtime, ctime, ino, np_, llen = row.unpack_from(data, pos)
                pos += row.size
                p = data[pos : pos + plen]
                pos += plen
                idx = struct.unpack_from(f">{np_}I", data, pos)
                pos += 4 * np_
                ps = names.get(idx)
                if ps is None:
                    ps = names[idx] = tuple(packs[i] for i in idx)
                files[p] = (size, mtime, ctime, ino, ps, data[pos : pos + llen])
                pos += llen
                if pos > len(data):
                    return None
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            struct.error,
            zstandard.ZstdError,
        ):
            return None
        return cache


class Backup:
    """One backup run: walk, store, and append the snapshot record."""

    def __init__(
        self,
        vault: Vault,
        *,
        source: str | None = None,
        excludes: tuple[str, ...] = (),
        tags: tuple[str, ...] = (),
        lock_margin: timedelta = LOCK_MARGIN,
        progress: Callable[[int], None] | None = None,
        after_read: Callable[[bytes], None] | None = None,
        force: bool = False,
        processes: bool = True,
    ) -> None:
        self.force = force
        # small files are read and sealed in worker processes (fileread.py says why);
        # with a test hook on reads, in the appender's threads
        self._use_processes = processes and after_read is None
        self._procs: ProcessPoolExecutor | None = None
        self._arena: Arena | None = None
        self.vault = vault
        self.source = source or default_source()
        self.tags = tuple(sorted(set(tags)))
        self.lock_margin = lock_margin
        self.progress = progress
        self._after_read = after_read  # tests: change a file right after it was read
        self._exclude = [re.compile(fnmatch.translate(g)) for g in excludes]
        self._excludes = excludes
        self._names: dict[tuple[str, int], str | None] = {}
        self._links: dict[tuple[int, int], bytes] = {}
        self._refs: set[str] = set()
        self._last_refs: tuple[str, ...] = ()
        self._jobs: deque[_Job | bytes] = deque()
        self._in_flight = 0
        self._unreported = 0
        self._lines: list[bytes] = []
        self._bytes_in_flight = 0
        self._job: _Job | None = None
        self._job_bytes = 0
        self._warnings: list[str] = []
        self._warned = 0
        self._committed_at = 0
        self._cache: FileCache | None = None
        self._next_cache = FileCache("", spill=True)
        self._spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in run)
        self._ap: Appender | None = None
        self._until = datetime.min
        self._bucket = ""
        self.stats = BackupResult("", -1, datetime.min, None)

    # --- entry points ---------------------------------------------------------------------

    def run(self, paths: list[str]) -> BackupResult:
        if not paths:
            raise BadInput("nothing to back up", "Name one or more directories or files.")
        roots: list[bytes] = []
        for p in paths:
            full = os.path.abspath(os.fsencode(p))  # noqa: PTH100 (bytes: any file name)
            try:
                os.lstat(full)
            except OSError as e:
                raise BadInput(f"cannot back up {p}: {e.strerror or e}") from e
            roots.append(full)
        roots = sorted(set(roots))
        for a in roots:
            for b in roots:
                if a != b and b.startswith(a.rstrip(b"/") + b"/"):
                    raise BadInput(f"{show(b)} is inside {show(a)}", "Name each tree once.")
        source_id = "paths:" + "\n".join(show(r) for r in roots)
        return self._run(source_id, [show(r) for r in roots], lambda: self._walk_all(roots))

    def run_stream(self, stream: BinaryIO, name: str) -> BackupResult:
        rel = os.fsencode(name)
        try:
            check_path(rel, "name")
        except CorruptVault as e:
            raise BadInput(
                f"invalid --name {name!r}", "A relative path without '..', e.g. db.sql."
            ) from e

        def walk() -> None:
            now = self.vault.now()
            node: dict[str, Any] = {"type": "file", "mode": 0o600}
            put_bytes(node, "path", rel)
            node["mtime_ns"] = int(now.timestamp() * 1e9)
            self._stream_into(node, stream, None)
            self.stats.bytes += node["size"]
            self._emit(node)

        return self._run("stdin:" + name, [], walk, name=name)

    # --- the run --------------------------------------------------------------------------

    def _run(
        self, source_id: str, paths: list[str], walk: Callable[[], None], name: str = ""
    ) -> BackupResult:
        vault = self.vault
        source_key = vault.source_key(self.source, source_id)
        acks: list[AppendResult] = []
        try:
            with Appender(vault, on_ack=acks.append, lock_margin=self.lock_margin) as ap:
                self._ap = ap
                started, start = vault.times()
                decision = vault.opts.policy.decide(SNAPSHOT_CLASS, self.source, start)
                self._until = decision.retain_until
                self._bucket = bucket_of(decision.retain_until)
                parent = self._parent(source_key)
                self.stats.parent = parent
                if parent is not None and not self.force:
                    self._cache = self._load_cache(parent, source_key)
                if self._use_processes:
                    self._procs = self._start_processes()
                walk()
                self._drain(0)
                header = {
                    "format": FORMAT,
                    "version": VERSION,
                    "name": name,
                    "host": socket.gethostname(),
                    "source": self.source,
                    "paths": paths,
                    "excludes": list(self._excludes),
                    "tags": list(self.tags),
                    "started": format_time(started),
                    "parent": parent,
                    "nodes": self._nodes,
                    "files": self.stats.files,
                    "dirs": self.stats.dirs,
                    "other": self.stats.other,
                    "bytes": self.stats.bytes,
                    "unchanged_files": self.stats.unchanged,
                    "new_bytes": ap.new_plain,
                    "stored_bytes": ap.new_stored,
                    "warnings": self._warnings,
                    "more_warnings": self._warned - len(self._warnings),
                }
                self._flush()
                self._spool.seek(0)
                content = cast(
                    BinaryIO,
                    io.BufferedReader(Prepend(encode_line(header), cast(BinaryIO, self._spool))),
                )
                ap.add(
                    Item(
                        open=lambda: content,
                        record_class=SNAPSHOT_CLASS,
                        source=self.source,
                        source_id=source_id,
                        filename=name or (paths[0] if paths else ""),
                        refs=tuple(sorted(self._refs)),
                    )
                )
                ap.commit()
                self.stats.new_bytes = ap.new_plain
                self.stats.stored_bytes = ap.new_stored
            result = next((r for r in acks if not r.duplicate), None)
            if result is None:  # cannot happen: the header's start time makes it new
                raise CorruptVault("the snapshot record was not acknowledged")
            self.stats.snapshot = result.record
            self.stats.serial = result.serial
            self.stats.retain_until = result.retain_until
            self.stats.warnings = self._warnings
            # the next run's file cache: this snapshot's files
            self._next_cache.snapshot = result.record
            with contextlib.suppress(OSError):  # only a cache: rebuilt from the snapshot
                self._next_cache.save(FileCache.path(self.vault, source_key))
        finally:
            if self._procs is not None:
                self._procs.shutdown(wait=True, cancel_futures=True)
            if self._arena is not None:
                self._arena.close()
            self._spool.close()
            self._next_cache.close()
        return self.stats

    def _start_processes(self) -> ProcessPoolExecutor:
        """Two worker processes, forked now — before the appender starts any thread, so
        no lock is held across the fork — each told to die with this process (a worker
        must never outlive it with the keys in its memory)."""
        key = self.vault.keyring.current
        self._key_id = key.key_id
        # a slot per job in flight (_drain leaves at most JOBS_IN_FLIGHT, then one more
        # is submitted), each as large as a job's files can be at the walk
        self._arena = Arena(JOBS_IN_FLIGHT + 1, GROUP_BYTES + MEDIUM + (64 << 10))
        return forked_workers(
            init_worker,
            self.vault.hasher.key,
            key.key_id,
            key.key,
            str(self.vault.catalog.path),
            self._arena,
        )

    @property
    def _nodes(self) -> int:
        return self.stats.files + self.stats.dirs + self.stats.other

    def _parent(self, source_key: str) -> str | None:
        row = self.vault.catalog.db.execute(
            "SELECT id FROM records WHERE class = ? AND source_key = ? AND disposed_serial IS NULL"
            " ORDER BY serial DESC LIMIT 1",
            (SNAPSHOT_CLASS, source_key),
        ).fetchone()
        return None if row is None else str(row[0])

    def _load_cache(self, parent: str, source_key: str) -> FileCache | None:
        """The parent's files, from the local cache or rebuilt from the parent snapshot;
        entries naming a pack that is no longer live are dropped."""
        cache = FileCache.load(FileCache.path(self.vault, source_key))
        if cache is None or cache.snapshot != parent:
            with tempfile.TemporaryFile() as f:
                self.vault.read_record(parent, f, audit=False)
                f.seek(0)
                cache = FileCache.from_manifest(parent, f)
        packs = sorted({p for v in cache.files.values() for p in v[4]})
        live: set[str] = set()
        db = self.vault.catalog.db
        for i in range(0, len(packs), 500):
            part = packs[i : i + 500]
            sql = _LIVE_PACKS.format(",".join("?" * len(part)))
            live.update(str(r[0]) for r in db.execute(sql, part))
        if live != set(packs):
            cache.files = {p: v for p, v in cache.files.items() if set(v[4]) <= live}
        return cache

    # --- the walk -------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        self._warned += 1
        if len(self._warnings) < MAX_WARNINGS:
            self._warnings.append(message)

    def _excluded(self, path: bytes) -> bool:
        if not self._exclude:
            return False
        text = show(path)
        base = text.rpartition("/")[2]
        return any(rx.match(text) or rx.match(base) for rx in self._exclude)

    def _walk_all(self, roots: list[bytes]) -> None:
        for root in roots:
            self._walk(root)

    def _walk(self, root: bytes) -> None:
        stack: list[Iterator[bytes]] = [iter([root])]
        while stack:
            path = next(stack[-1], None)
            if path is None:
                stack.pop()
                continue
            if self._excluded(path):
                continue
            if len(path) > MAX_PATH:
                self._warn(f"{show(path)[:80]}...: path longer than {MAX_PATH} bytes; skipped")
                continue
            try:
                st = os.lstat(path)
            except OSError as e:
                self._warn(f"{show(path)}: {e.strerror or e}; not backed up")
                continue
            if self._cache is not None and stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                rel = path.lstrip(b"/")
                hit = self._cache.files.get(rel)
                if hit is not None and hit[:4] == (
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ctime_ns,
                    st.st_ino,
                ):
                    self._reuse(rel, hit)
                    continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_size <= MEDIUM:
                self._queue_small(path, st)  # described by the worker that reads it
                continue
            node = self._node(path, st)
            if node is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                if path != b"/":  # the file system root has no name to restore under
                    self._emit(node)
                try:
                    with os.scandir(path) as it:
                        names = sorted(e.name for e in it)
                except OSError as e:
                    self._warn(f"{show(path)}: cannot list: {e.strerror or e}")
                    continue
                base = path.rstrip(b"/")
                stack.append(iter([base + b"/" + n for n in names]))
            elif stat.S_ISREG(st.st_mode):
                self._file(path, st, node)
            else:
                self._emit(node)

    def _node(self, path: bytes, st: os.stat_result) -> dict[str, Any] | None:
        kind = type_of(st.st_mode)
        if kind is None:
            self._warn(f"{show(path)}: unknown file type; skipped")
            return None
        node = describe(path.lstrip(b"/"), st, kind)
        if kind == "symlink":
            try:
                put_bytes(node, "target", os.readlink(path))  # noqa: PTH115 (bytes)
            except OSError as e:
                self._warn(f"{show(path)}: cannot read link: {e.strerror or e}; skipped")
                return None
        elif kind in ("char", "block"):
            node["rdev"] = st.st_rdev
        if kind == "dir":  # a file's are read with its content (from its descriptor)
            xattrs = self._xattrs(path)
            if xattrs:
                node["xattrs"] = xattrs
        if kind == "file" and st.st_nlink > 1:
            first = self._links.get((st.st_dev, st.st_ino))
            if first is not None:
                node["type"] = "hardlink"
                put_bytes(node, "link", first)
            else:
                self._links[(st.st_dev, st.st_ino)] = path.lstrip(b"/")
        return node

    def _xattrs_node(self, path: bytes) -> dict[str, Any]:
        x = self._xattrs(path)
        return {"xattrs": x} if x else {}

    def _xattrs(self, path: bytes) -> dict[str, str]:
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            return {}
        out: dict[str, str] = {}
        for n in sorted(names):
            try:
                out[n] = base64.b64encode(os.getxattr(path, n, follow_symlinks=False)).decode()
            except OSError as e:
                self._warn(f"{show(path)}: cannot read extended attribute {n}: {e.strerror or e}")
        return out

    def _write(self, line: bytes) -> None:
        """Manifest lines go to the spool in batches (one write call per line costs)."""
        self._lines.append(line)
        if len(self._lines) >= 1024:
            self._flush()

    def _flush(self) -> None:
        self._spool.write(b"".join(self._lines))
        self._lines.clear()

    def _advance(self, n: int) -> None:
        """Progress, reported in steps of 8 MiB (a call per small file costs more)."""
        self._unreported += n
        if self.progress and self._unreported >= 8 << 20:
            self.progress(self._unreported)
            self._unreported = 0

    def _emit(self, node: dict[str, Any]) -> None:
        """Write a finished node, or queue it behind files still being read: lines stay
        in walk order."""
        kind = node["type"]
        if kind == "dir":
            self.stats.dirs += 1
        elif kind in ("file", "hardlink"):
            self.stats.files += 1
        else:
            self.stats.other += 1
        line = encode_line(node)
        self._next_cache.add(node, line)
        if self._jobs:
            self._jobs.append(line)
        else:
            self._write(line)

    def _reuse(self, rel: bytes, hit: tuple[int, int, int, int, tuple[str, ...], bytes]) -> None:
        """An unchanged file: its line from the last snapshot, as it was."""
        self.stats.files += 1
        self.stats.unchanged += 1
        self.stats.bytes += hit[0]
        if hit[4] is not self._last_refs:  # neighbours mostly share their (shared) tuple
            self._refs.update(hit[4])
            self._last_refs = hit[4]
        self._next_cache.put(rel, hit)
        self._advance(hit[0])
        if self._jobs:
            self._jobs.append(hit[5])
        else:
            self._write(hit[5])

    def _file(self, path: bytes, st: os.stat_result, node: dict[str, Any]) -> None:
        if node["type"] == "hardlink":
            self._emit(node)
            return
        if st.st_size > MEDIUM:  # streamed; its line queues behind the files in flight
            node.update(self._xattrs_node(path))
            self._stream_file(path, node)
            self._emit(node)
            return
        self._queue_small(path, st)

    def _queue_small(self, path: bytes, st: os.stat_result) -> None:
        """A file for the workers, in the open group (planned into a pack now)."""
        ap = self._ap
        assert ap is not None
        if self._job is None:
            self._job = _Job([], [])
            self._jobs.append(self._job)
            self._job_bytes = 0
        w = ap.writer(self._bucket, st.st_size)
        w.note_retention(self._until + self.lock_margin)
        ap.reserved[id(w)] = ap.reserved.get(id(w), 0) + 1
        self._job.paths.append(path)
        self._job.writers.append(w)
        self._job_bytes += st.st_size
        self.stats.files += 1
        if len(self._job.paths) >= GROUP_FILES or self._job_bytes >= GROUP_BYTES:
            self._submit()

    def _submit(self) -> None:
        job, self._job = self._job, None
        if job is None:
            return
        ap = self._ap
        assert ap is not None
        if self._procs is not None:
            assert all(w.key.key_id == self._key_id for w in job.writers)
            assert self._arena is not None
            job.slot = self._arena.take()
            job.future = self._procs.submit(
                read_in_worker, job.paths, [w.name for w in job.writers], job.slot
            )
        else:
            job.future = ap.pool.submit(self._read_group, job.paths, job.writers)
        job.size = self._job_bytes
        self._in_flight += 1
        self._bytes_in_flight += job.size
        self._drain(JOBS_IN_FLIGHT)

    def _drain(self, limit: int) -> None:
        """Take finished jobs (and the nodes queued behind them) off the queue, in order,
        until at most ``limit`` jobs are in flight."""
        if limit == 0:
            self._submit()
        ap = self._ap
        assert ap is not None
        while self._jobs:
            head = self._jobs[0]
            if isinstance(head, bytes):
                self._write(head)
                self._jobs.popleft()
                continue
            if head.future is None or (
                self._in_flight <= limit
                and self._bytes_in_flight <= BYTES_IN_FLIGHT
                and not head.future.done()
            ):
                break
            self._jobs.popleft()
            self._in_flight -= 1
            self._bytes_in_flight -= head.size
            try:
                reads = head.future.result()
                for path, w, r in zip(head.paths, head.writers, reads, strict=True):
                    try:
                        line = self._finish_small(path, w, r)
                    finally:
                        ap.reserved[id(w)] -= 1
                    self._write(line)
            finally:
                if self._arena is not None:
                    self._arena.give(head.slot)
            ap.store_closed()
        if ap.new_plain - self._committed_at >= COMMIT_BYTES and not self._jobs:
            # an intermediate commit: the packs so far enter the ledger and the catalog,
            # so a run killed later restarts from them (deduplicated) instead of from zero
            ap.commit()
            self._committed_at = ap.new_plain

    def _finish_small(self, path: bytes, w: PackWriter, r: _Read) -> bytes:
        """The manifest line of a file a worker read: its head, and the chunk list once
        each chunk has its place."""
        ap = self._ap
        assert ap is not None
        for warning in r.warnings:
            self._warn(warning)
        rel = path.lstrip(b"/")
        if r.error or r.big:
            try:
                st = os.lstat(path)
                node = describe(rel, st, type_of(st.st_mode) or "file")
            except OSError:
                node = {"type": "file", "mode": 0}
                put_bytes(node, "path", rel)
            if r.error:
                node.update(type="file", error=r.error, size=0, chunks=[])
                self._warn(f"{show(path)}: {r.error}; recorded without content")
            else:  # grew past MEDIUM since the walk: streamed like a large file
                node.update(self._xattrs_node(path))
                self._stream_file(path, node)
            line = encode_line(node)
            self._next_cache.add(node, line)
            return line
        refs: list[list[object]] = []
        names: set[str] = set()
        view = self._arena.view if self._arena is not None else None
        for i, (cid, known, _, n) in enumerate(r.chunks):
            ref = ap.adopt(w, cid, known, r.sealed(i, view), n)
            refs.append([ref.pack, ref.offset, ref.length, ref.plain_len, cid.hex()])
            names.add(ref.pack)
        packs = tuple(sorted(names))
        self._refs.update(packs)
        line = b"".join(
            (r.head, b',"chunks":', json.dumps(refs, separators=(",", ":")).encode(), b"}\n")
        )
        if r.changed:
            self._warn(f"{show(path)}: changed while it was read; what was read is kept")
        else:
            assert r.st is not None
            self._next_cache.put(
                rel, (r.size, r.st.st_mtime_ns, r.st.st_ctime_ns, r.st.st_ino, packs, line)
            )
        self.stats.bytes += r.size
        self._advance(r.size)
        return line

    @staticmethod
    def _describe(node: dict[str, Any], st: os.stat_result | None) -> None:
        """Times and size as read (the walk's lstat may be older)."""
        if st is not None:
            node["mode"] = stat.S_IMODE(st.st_mode)
            node["mtime_ns"], node["ctime_ns"], node["inode"] = (
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_ino,
            )

    def _read_group(self, paths: list[bytes], writers: list[PackWriter]) -> list[_Read]:
        """Worker thread: read, hash, look up and seal a group of files."""
        ap = self._ap
        assert ap is not None
        return read_files(paths, writers, ap.prepare, self._after_read)

    def _stream_file(self, path: bytes, node: dict[str, Any]) -> None:
        for attempt in range(RETRIES):
            try:
                fd = os.open(path, READ_FLAGS)
            except OSError as e:
                node["error"] = f"cannot open: {e.strerror or e}"
                node["size"] = 0
                self._warn(f"{show(path)}: {node['error']}; recorded without content")
                return
            with os.fdopen(fd, "rb", buffering=0) as f:
                before = os.fstat(fd)
                try:
                    self._stream_into(node, f, path)
                except OSError as e:
                    node["error"] = f"read error: {e.strerror or e}"
                    node["size"], node["chunks"] = 0, []
                    node.pop("sha256", None)
                    self._warn(f"{show(path)}: {node['error']}; recorded without content")
                    return
                after = os.fstat(fd)
            self._describe(node, after)
            if _same(before, after) and node["size"] == after.st_size:
                node.pop("changed", None)
                break
            node["changed"] = True
            del attempt
        self.stats.bytes += node["size"]
        if node.get("changed"):
            self._warn(f"{show(path)}: changed while it was read; what was read is kept")

    def _stream_into(self, node: dict[str, Any], stream: BinaryIO, path: bytes | None) -> None:
        ap = self._ap
        assert ap is not None
        sha = hashlib.sha256()
        chunks: list[tuple[BlobRef, bytes]] = []
        size = ap.chunk_stream(
            b"",
            cast(BinaryIO, _Counting(stream, self.progress)),
            self._bucket,
            self._until + self.lock_margin,
            sha,
            chunks,
            None,
        )
        if path is not None and self._after_read is not None:
            self._after_read(path)
        node["size"] = size
        node["sha256"] = sha.hexdigest()
        node["chunks"] = [[r.pack, r.offset, r.length, r.plain_len, c.hex()] for r, c in chunks]
        self._refs.update(r.pack for r, _ in chunks)


class _Counting(io.RawIOBase):
    """A reader that reports progress."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None] | None) -> None:
        self._s = stream
        self._p = progress

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = self._s.readinto(b)  # type: ignore[attr-defined]
        if n and self._p:
            self._p(n)
        return int(n or 0)
