"""A store in a local directory: one file per object, one lock file per object.

Retention note — read before deploying. This backend enforces retention **in
software only**: its API refuses overwrites and early deletes, and the vault's
``verify`` catches changes made behind its back, so it is *tamper-evident*; but it
is not *non-erasable* — anyone with write access to the directory (root, a backup
tool, ``rm -rf``) can delete or alter files. Rewriteable disk meets SEC
17a-4(f)(2)(i)(B) only through integrated control codes, not extrinsic access
controls (REQUIREMENTS.md F2-i-B-2), so records that must be kept in WORM form
belong on the S3 Object Lock backend (COMPLIANCE mode), where the server enforces
retention.

Layout under ``root``::

    objects/<name>       the bytes; chmod 0o444 once written
    locks/<name>.json    retention state (retain_until, mode, legal_hold, size, created)
    tmp/                 temp files; same filesystem, so link and rename are atomic
    .store.lock          flock target that serialises writers across processes

Crash safety. ``put`` writes the bytes to a temp file and fsyncs it, then writes
the lock state the same way and publishes it (rename), fsyncing its directory;
only then is the object made visible with ``os.link`` (which never replaces), and
its directory fsynced. So a visible object always has its lock file; a lock file
without its object (a crash between the two steps) is treated as absent and is
replaced by the next ``put`` of that name. Lock-state updates are write-temp,
fsync, ``os.replace``, fsync-directory. Opening the store removes leftover temp
files and never touches ``objects/``.

Concurrency. Mutations (and the temp clean-up on open) hold an exclusive
``flock`` on ``.store.lock`` plus a thread lock, so several processes or threads
may share a root; reads take no lock. POSIX only (``os.link``, ``fcntl``,
directory fsync).

Names map to paths one-to-one, so a name cannot be both an object and a prefix
directory (``a`` and ``a/b``, and, through the lock files, ``a`` and ``a.json/b``);
such a ``put`` raises :class:`BadInput`. ``MemoryStore`` applies the same rule.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

from strongroom.errors import (
    BadInput,
    CorruptVault,
    DiskFull,
    NotFound,
    ObjectExists,
    Refused,
    StorageError,
    StrongroomError,
)
from strongroom.store.base import Now, ObjectInfo, RetentionMode, check_name, utc
from strongroom.store.rules import LOCK_FORMAT, LockState, check_range, check_transition, iso

__all__ = ["LOCK_FORMAT", "LocalStore", "LockState", "check_range", "check_transition", "iso"]

_CHUNK = 1 << 20
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _os_error(e: OSError, what: str) -> StrongroomError:
    """Map an OSError to the error family: a full disk or quota is DiskFull."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"no space left while {what}: {e.strerror}")
    if e.errno == errno.ENAMETOOLONG:
        return BadInput(f"name too long for this filesystem while {what}")
    return StorageError(f"I/O error while {what}: {e}")


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view[:_CHUNK])
        view = view[n:]


# Large objects (packs) are written around the page cache: copying 16 MiB into fresh
# page-cache pages cost more CPU than sealing them (measured in docs/benchmarks.md),
# and a pack just written is not read again soon. The fsync that follows is the same.
_O_DIRECT = getattr(os, "O_DIRECT", 0)
DIRECT_MIN = 1 << 20  # objects at least this large
_ALIGN = 4096  # offsets, lengths and the buffer's address (logical block size or more)
_BOUNCE = 4 << 20
_bounce = threading.local()


def _set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for an open file; False if the file system refuses."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | _O_DIRECT) if on else (flags & ~_O_DIRECT))
    except OSError as e:
        if e.errno == errno.EINVAL:
            return False
        raise
    return True


def _write_direct(fd: int, data: bytes | bytearray) -> bool:
    """Write ``data`` to a new, empty file, its aligned part with O_DIRECT (through a
    page-aligned buffer this thread reuses) and the tail through the page cache.
    Returns False, having written nothing, when the file system does not take direct
    writes (the caller then writes normally)."""
    view = memoryview(data)
    aligned = len(view) - len(view) % _ALIGN
    if not _O_DIRECT or aligned == 0 or not _set_direct(fd, True):
        return False
    buf: mmap.mmap | None = getattr(_bounce, "buf", None)
    if buf is None:
        buf = _bounce.buf = mmap.mmap(-1, _BOUNCE)  # page-aligned, reused: no fresh pages
    done = 0
    try:
        while done < aligned:
            n = min(_BOUNCE, aligned - done)
            buf[:n] = view[done : done + n]
            try:
                wrote = os.write(fd, memoryview(buf)[:n])
            except OSError as e:
                if e.errno == errno.EINVAL and done == 0:  # alignment this device refuses
                    return False  # (O_DIRECT goes off again below)
                raise
            done += wrote
            if wrote != n or wrote % _ALIGN:
                break  # a short write: the rest goes through the page cache
    finally:
        if not _set_direct(fd, False):
            raise OSError(errno.EINVAL, "cannot turn O_DIRECT off again")
    _write_all(fd, view[done:])
    return True


def _fsync_dir(path: Path) -> None:
    """Make a directory's entries (new files, renames, unlinks) durable."""
    fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quiet(path: Path | None) -> None:
    if path is not None:
        with suppress(OSError):
            path.unlink()


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _regular(path: Path) -> os.stat_result | None:
    """The stat of a regular file at ``path`` (symlinks not followed), else None."""
    st = _lstat(path)
    return st if st is not None and stat.S_ISREG(st.st_mode) else None


# ------------------------------------------------------------------------- store


class LocalStore:
    """A write-once store in a directory (see the module docstring for the layout)."""

    url: str

    def __init__(self, root: Path, now: Now) -> None:
        given = Path(root).expanduser()
        try:
            given.mkdir(parents=True, exist_ok=True)
            self.root = given.resolve(strict=True)
            self._objects = self.root / "objects"
            self._locks = self.root / "locks"
            self._tmp = self.root / "tmp"
            for d in (self._objects, self._locks, self._tmp):
                d.mkdir(exist_ok=True)
                st = os.lstat(d)
                if not stat.S_ISDIR(st.st_mode):
                    raise StorageError(f"{d} must be a directory, not a link or file")
            self._lock_fd = os.open(
                self.root / ".store.lock", os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o644
            )
        except OSError as e:
            raise _os_error(e, f"opening the store at {given}") from e
        self.url = self.root.as_uri()
        self._now = now
        self._mutex = threading.RLock()
        self._closed = False
        try:
            with self._writer():
                self._clean_tmp()
        except OSError as e:
            self.close()
            raise _os_error(e, f"cleaning {self._tmp}") from e

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    def close(self) -> None:
        """Release the writer-lock file; further use raises StorageError."""
        with self._mutex:
            if not self._closed:
                self._closed = True
                os.close(self._lock_fd)

    # ------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"store {self.url} is closed")

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """Serialise mutations across threads (RLock) and processes (flock)."""
        with self._mutex:
            self._check_open()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _clean_tmp(self) -> None:
        """Remove temp files left by a crash; called under the writer lock."""
        with os.scandir(self._tmp) as it:
            for entry in it:
                if not entry.is_dir(follow_symlinks=False):
                    _unlink_quiet(Path(entry.path))

    def _inside(self, path: Path, base: Path, name: str) -> None:
        """Refuse paths that resolve outside ``base`` (e.g. via a planted symlink)."""
        real = os.path.realpath(path)
        if not real.startswith(str(base) + os.sep):
            raise StorageError(
                f"the path for {name!r} resolves outside {base} (to {real}); refusing to use it"
            )

    def _paths(self, name: str) -> tuple[Path, Path]:
        """Object and lock-file paths for a valid ``name``, checked to stay in root."""
        self._check_open()
        check_name(name)
        obj = self._objects / name
        lock = self._locks / f"{name}.json"
        self._inside(obj, self._objects, name)
        self._inside(lock, self._locks, name)
        return obj, lock

    def _read_state(self, name: str, lock: Path) -> LockState | None:
        try:
            fd = os.open(lock, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        with os.fdopen(fd, "rb") as f:
            raw = f.read(1 << 16)
        return LockState.from_json(name, raw, str(lock))

    def _require(self, name: str) -> tuple[Path, Path, os.stat_result, LockState]:
        """Paths, stat and lock state of an existing object; NotFound if absent."""
        obj, lock = self._paths(name)
        try:
            st = _regular(obj)
            if st is None:
                raise NotFound(f"no object {name!r} in {self.url}")
            state = self._read_state(name, lock)
        except OSError as e:
            raise _os_error(e, f"reading {name!r}") from e
        if state is None:
            raise CorruptVault(
                f"object {name!r} in {self.url} has no lock file; its retention is unknown",
                "The object is treated as retained; run 'strongroom verify' and restore "
                "the lock file from a replica.",
            )
        return obj, lock, st, state

    def _write_temp(self, payload: bytes | bytearray, kind: str) -> Path:
        """Write ``payload`` to a new read-only file in ``tmp/`` and fsync it."""
        path = self._tmp / f"{kind}-{secrets.token_hex(8)}.tmp"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
        try:
            try:
                os.fchmod(fd, 0o444)
                if len(payload) < DIRECT_MIN or not _write_direct(fd, payload):
                    _write_all(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _unlink_quiet(path)
            raise
        return path

    def _makedirs(self, directory: Path, base: Path, name: str) -> list[Path]:
        """Create ``directory`` and missing parents below ``base``; return the new ones.

        An existing non-directory on the way means a shorter name is an object, which
        a path-mapped store cannot combine with a longer one: BadInput.
        """
        missing: list[Path] = []
        p = directory
        while p != base:
            st = _lstat(p)
            if st is None:
                missing.append(p)
                p = p.parent
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise self._conflict(name, p, base)
            break
        for d in reversed(missing):
            try:
                d.mkdir(0o755)
            except FileExistsError:
                if not d.is_dir():
                    raise self._conflict(name, d, base) from None
        return missing

    def _conflict(self, name: str, path: Path, base: Path) -> BadInput:
        other = path.relative_to(base).as_posix()
        return BadInput(
            f"cannot store {name!r} in {self.url}: {other!r} is an object or a prefix of "
            "other objects, and this store cannot hold a name that is both"
        )

    def _write_state(self, name: str, lock: Path, old: LockState, new: LockState) -> None:
        """Atomically replace the lock file (temp, fsync, replace, fsync dir)."""
        check_transition(name, old, new)
        if new == old:
            return
        tmp = self._write_temp(new.to_json(name), "lock")
        try:
            tmp.replace(lock)
        finally:
            _unlink_quiet(tmp)  # gone after a successful replace
        _fsync_dir(lock.parent)

    def _same_content(self, obj: Path, data: bytes | bytearray) -> bool:
        fd = os.open(obj, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if os.fstat(f.fileno()).st_size != len(data):
                return False
            view = memoryview(data)
            pos = 0
            while chunk := f.read(_CHUNK):
                if chunk != view[pos : pos + len(chunk)]:
                    return False
                pos += len(chunk)
            return pos == len(data)

    def _put_existing(
        self,
        name: str,
        obj: Path,
        data: bytes | bytearray,
        *,
        until: datetime,
        mode: RetentionMode,
        hold: bool,
    ) -> ObjectInfo:
        """``put`` onto an existing object: identical bytes → retry, else ObjectExists."""
        if not self._same_content(obj, data):
            raise ObjectExists(
                f"{name!r} already exists in {self.url} with different content; "
                "objects are never overwritten"
            )
        _, lock, _, state = self._require(name)
        new = state.merged_for_retry(until, mode, hold)
        self._write_state(name, lock, state, new)
        return new.info(name)

    def _create(
        self, name: str, obj: Path, lock: Path, data: bytes | bytearray, state: LockState
    ) -> bool:
        """Write a new object: bytes, then lock file (published), then link, fsyncs.

        Returns False if the link found the name taken, which only a writer that
        bypassed the writer lock can cause; the lock file is then left alone.
        """
        data_tmp: Path | None = None
        lock_tmp: Path | None = None
        published = linked = False
        try:
            data_tmp = self._write_temp(data, "obj")
            lock_tmp = self._write_temp(state.to_json(name), "lock")
            new_obj_dirs = self._makedirs(obj.parent, self._objects, name)
            new_lock_dirs = self._makedirs(lock.parent, self._locks, name)
            # Any lock file here is stale (the object is absent and we hold the writer
            # lock), so replacing it is safe; the lock must be durable before the link.
            lock_tmp.replace(lock)
            lock_tmp, published = None, True
            for d in {lock.parent, *(d.parent for d in new_lock_dirs)}:
                _fsync_dir(d)
            try:
                os.link(data_tmp, obj, follow_symlinks=False)  # never replaces
            except FileExistsError:
                linked = True  # not ours, but its lock file must stay
                return False
            linked = True
            _unlink_quiet(data_tmp)
            data_tmp = None
            for d in {obj.parent, *(d.parent for d in new_obj_dirs)}:
                _fsync_dir(d)
            return True
        finally:
            _unlink_quiet(data_tmp)
            _unlink_quiet(lock_tmp)
            if published and not linked:
                _unlink_quiet(lock)

    # ------------------------------------------------------------ protocol

    def put(
        self,
        name: str,
        data: bytes | bytearray,
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
        legal_hold: bool = False,
    ) -> ObjectInfo:
        """Create ``name`` durably; see :meth:`Store.put` for the retry rules."""
        obj, lock = self._paths(name)
        retain_until = utc(retain_until)
        mode = RetentionMode(mode)
        with self._writer():
            try:
                st = _lstat(obj)
                if st is not None and stat.S_ISREG(st.st_mode):
                    return self._put_existing(
                        name, obj, data, until=retain_until, mode=mode, hold=legal_hold
                    )
                if st is not None:
                    raise self._conflict(name, obj, self._objects)
                if (st := _lstat(lock)) is not None and stat.S_ISDIR(st.st_mode):
                    raise self._conflict(name, lock, self._locks)
                state = LockState(retain_until, mode, legal_hold, len(data), utc(self._now()))
                if self._create(name, obj, lock, data, state):
                    return state.info(name)
                if not obj.is_file():
                    raise self._conflict(name, obj, self._objects)
                return self._put_existing(
                    name, obj, data, until=retain_until, mode=mode, hold=legal_hold
                )
            except OSError as e:
                raise _os_error(e, f"writing {name!r} to {self.url}") from e

    def put_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
    ) -> list[ObjectInfo]:
        """:meth:`put` of several new objects with the same retention, all durable on
        return. The same steps as ``put`` in the same order — every lock file durable
        before any object is linked — but the temp files are written and fsynced in
        parallel and each directory is fsynced once per step, not once per object."""
        retain_until = utc(retain_until)
        mode = RetentionMode(mode)
        if len(items) < 2:
            return [self.put(n, d, retain_until=retain_until, mode=mode) for n, d in items]
        paths = [self._paths(name) for name, _ in items]
        with self._writer():
            try:
                fresh = [
                    i
                    for i, (obj, lock) in enumerate(paths)
                    if _lstat(obj) is None and _lstat(lock) is None
                ]
                out = self._create_many(items, paths, fresh, retain_until, mode)
            except OSError as e:
                raise _os_error(e, f"writing {len(items)} objects to {self.url}") from e
        # anything that existed (a retry after a crash) takes the checked one-by-one path
        return [
            out[i] if i in out else self.put(n, d, retain_until=retain_until, mode=mode)
            for i, (n, d) in enumerate(items)
        ]

    def _create_many(
        self,
        items: Sequence[tuple[str, bytes]],
        paths: list[tuple[Path, Path]],
        fresh: list[int],
        until: datetime,
        mode: RetentionMode,
    ) -> dict[int, ObjectInfo]:
        now = utc(self._now())
        states = {i: LockState(until, mode, False, len(items[i][1]), now) for i in fresh}
        jobs = [(items[i][1], "obj") for i in fresh]
        jobs += [(states[i].to_json(items[i][0]), "lock") for i in fresh]
        temps: list[Path] = []
        published: dict[int, Path] = {}
        linked: set[int] = set()
        try:
            # fsync releases the GIL: the temp files are made durable side by side
            with ThreadPoolExecutor(max_workers=4, thread_name_prefix="fsync") as pool:
                futures = [pool.submit(self._write_temp, data, kind) for data, kind in jobs]
                errors = []
                for f in futures:  # keep every temp path, to clean up after a failure
                    if f.exception() is None:
                        temps.append(f.result())
                    else:
                        errors.append(f.exception())
            if errors:
                raise errors[0]  # type: ignore[misc]
            obj_dirs: set[Path] = set()
            lock_dirs: set[Path] = set()
            for k, i in enumerate(fresh):
                name = items[i][0]
                obj, lock = paths[i]
                obj_dirs.add(obj.parent)
                obj_dirs.update(d.parent for d in self._makedirs(obj.parent, self._objects, name))
                lock_dirs.add(lock.parent)
                lock_dirs.update(d.parent for d in self._makedirs(lock.parent, self._locks, name))
                temps[len(fresh) + k].replace(lock)  # no lock file existed (checked above)
                published[i] = lock
            for d in lock_dirs:  # every lock durable before any object appears
                _fsync_dir(d)
            for k, i in enumerate(fresh):
                os.link(temps[k], paths[i][0], follow_symlinks=False)  # never replaces
                linked.add(i)
            for d in obj_dirs:
                _fsync_dir(d)
            return {i: states[i].info(items[i][0]) for i in fresh}
        finally:
            for t in temps:
                _unlink_quiet(t)  # data temps; lock temps were renamed (or are unused)
            for i, lock in published.items():
                if i not in linked:
                    _unlink_quiet(lock)

    def quarantine(self, name: str, expected_sha256: str) -> Path:
        """Move a *damaged* object aside so that ``repair`` can create it again.

        Only an object whose bytes do not hash to ``expected_sha256`` (the hash the
        ledger or the healthy replica gives) moves; its bytes and lock file are kept,
        read-only, under ``quarantine/<time>/`` as evidence — nothing is deleted, and a
        healthy retained object can never be moved (``Refused``).
        """
        obj, lock = self._paths(name)
        with self._writer():
            try:
                h = hashlib.sha256()
                with obj.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                if h.hexdigest() == expected_sha256:
                    raise Refused(f"refusing to quarantine {name!r}: its content is intact")
                stamp = utc(self._now()).strftime("%Y%m%dT%H%M%S%fZ")
                dest = self.root / "quarantine" / stamp
                (dest / "objects" / name).parent.mkdir(parents=True, exist_ok=True)
                (dest / "locks" / name).parent.mkdir(parents=True, exist_ok=True)
                obj.rename(dest / "objects" / name)
                if lock.exists():
                    lock.rename(dest / "locks" / f"{name}.json")
                for d in (obj.parent, lock.parent, (dest / "objects" / name).parent, dest):
                    _fsync_dir(d)
            except FileNotFoundError as e:
                raise NotFound(f"no object {name!r} in {self.url}") from e
            except OSError as e:
                raise _os_error(e, f"quarantining {name!r}") from e
        return dest

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Read a byte range with a seek (never loads more than asked)."""
        obj, _ = self._paths(name)
        check_range(offset, length)
        try:
            try:
                fd = os.open(obj, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError):
                raise NotFound(f"no object {name!r} in {self.url}") from None
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise NotFound(f"no object {name!r} in {self.url}")
                f.seek(offset)
                return f.read() if length is None else f.read(length)
        except OSError as e:
            if e.errno == errno.ELOOP:  # a symlink where an object should be
                raise NotFound(f"no object {name!r} in {self.url}") from e
            raise _os_error(e, f"reading {name!r}") from e

    def head(self, name: str) -> ObjectInfo:
        """Size, retention and hold; CorruptVault if the lock file is missing or wrong."""
        _, _, st, state = self._require(name)
        if st.st_size != state.size:
            raise CorruptVault(
                f"object {name!r} in {self.url} is {st.st_size} bytes but its lock file "
                f"records {state.size}; it was altered outside Strongroom",
                "Run 'strongroom verify' and restore the object from a replica.",
            )
        return state.info(name)

    def exists(self, name: str) -> bool:
        obj, _ = self._paths(name)
        try:
            return _regular(obj) is not None
        except OSError as e:
            raise _os_error(e, f"checking {name!r}") from e

    def list(self, prefix: str = "") -> Iterator[str]:
        """Sorted names starting with ``prefix``; only the prefix's directory is walked."""
        self._check_open()
        dir_part, sep, start = prefix.rpartition("/")
        if sep:
            try:
                check_name(dir_part)
            except BadInput:
                return  # no valid name starts with this prefix
            base = self._objects / dir_part
            self._inside(base, self._objects, dir_part)
            yield from self._walk(base, dir_part + "/", start)
        else:
            yield from self._walk(self._objects, "", start)

    def _walk(self, directory: Path, name_prefix: str, start: str) -> Iterator[str]:
        """Yield object names below ``directory`` in sorted order.

        Sibling entries are ordered with ``/`` appended to directory names, which is
        exactly the order of the full names (``a.c`` < ``a/b`` because ``.`` < ``/``).
        """
        entries: list[tuple[str, bool]] = []
        try:
            with os.scandir(directory) as it:
                for e in it:
                    if not e.name.startswith(start):
                        continue
                    try:
                        check_name(name_prefix + e.name)
                    except BadInput:
                        continue
                    if e.is_dir(follow_symlinks=False):
                        entries.append((e.name + "/", True))
                    elif e.is_file(follow_symlinks=False):
                        entries.append((e.name, False))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            raise _os_error(e, f"listing {directory}") from e
        for key, is_dir in sorted(entries):
            if is_dir:
                yield from self._walk(directory / key[:-1], name_prefix + key, "")
            else:
                yield name_prefix + key

    def _change(self, name: str, change: Callable[[LockState], LockState]) -> ObjectInfo:
        """Apply ``change`` to the lock state under the writer lock and persist it."""
        with self._writer():
            _, lock, _, state = self._require(name)
            new = change(state)
            try:
                self._write_state(name, lock, state, new)
            except OSError as e:
                raise _os_error(e, f"updating the lock file of {name!r}") from e
            return new.info(name)

    def extend_retention(self, name: str, retain_until: datetime) -> ObjectInfo:
        """Move retain-until later; an earlier date is Refused, an equal one a no-op."""
        return self._change(name, lambda state: state.extended(name, retain_until))

    def set_legal_hold(self, name: str, on: bool) -> ObjectInfo:
        return self._change(name, lambda state: state.with_hold(on))

    def delete(self, name: str) -> None:
        """Delete an expired, unheld object: object file first, then its lock file."""
        with self._writer():
            obj, lock, _, state = self._require(name)
            state.check_delete(name, utc(self._now()))
            try:
                obj.unlink()
                _fsync_dir(obj.parent)
                lock.unlink()
                _fsync_dir(lock.parent)
            except OSError as e:
                raise _os_error(e, f"deleting {name!r}") from e
