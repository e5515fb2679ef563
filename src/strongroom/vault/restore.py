"""Reading backups: list snapshots, load, compare and search them, restore them.

Restore writes into an empty (or new) target directory and resolves every path
relative to an open descriptor of it (``dir_fd``): a restored path is never longer
than the snapshot's own, and the manifest's paths are checked (no ``..``, no absolute
path, every parent a directory of the snapshot) before anything is written. Symbolic
links are created only after every file's content is in place, so no write can
follow one. Each chunk read is authenticated (AES-GCM, bound to its pack and id) and
checked against its keyed id before its bytes are written.

Content is fetched pack by pack, in offset order, with neighbouring chunks read in one
ranged ``get`` (:data:`RANGE_GAP`), decoded and written by two threads; a file is
created at its full size first, so all-zero chunks are skipped and sparse files stay
sparse.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from strongroom.core.entries import EntryType, decode_entry
from strongroom.core.retention import parse_time
from strongroom.errors import BadInput, CorruptVault, NotFound
from strongroom.vault.packs import open_blob
from strongroom.vault.snapshot import (
    SNAPSHOT_CLASS,
    Manifest,
    Node,
    parse_header,
    read_manifest,
    show,
)
from strongroom.vault.vault import Vault

RANGE_GAP = 1 << 20  # chunks closer than this in a pack are fetched in one read
RANGE_MAX = 32 << 20
_WRITE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_HEADER_MAX = 4 << 20


# --- finding and loading snapshots -------------------------------------------------------


def snapshot_rows(
    vault: Vault, source: str | None = None, at: datetime | None = None
) -> list[dict[str, Any]]:
    """Live snapshot records, oldest first (catalog rows)."""
    sql = "SELECT * FROM records WHERE class = ? AND disposed_serial IS NULL"
    args: list[Any] = [SNAPSHOT_CLASS]
    if source:
        sql += " AND source = ?"
        args.append(source)
    sql += " ORDER BY serial"
    cur = vault.catalog.db.execute(sql, args)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    if at is not None:
        rows = [r for r in rows if parse_time(r["received"]) <= at]
    return rows


def resolve(
    vault: Vault, spec: str, source: str | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """A snapshot by id, or ``latest`` (optionally of a source, taken at or before ``at``)."""
    if spec == "latest":
        rows = snapshot_rows(vault, source, at)
        if not rows:
            raise NotFound(
                "no snapshot"
                + (f" of source {source}" if source else "")
                + (f" taken at or before {at:%Y-%m-%d %H:%M:%S}Z" if at else ""),
                "List them with `strongroom snapshots`.",
            )
        return rows[-1]
    rec = vault.record(spec)
    if rec["class"] != SNAPSHOT_CLASS:
        raise BadInput(f"record {spec} is a {rec['class']} record, not a backup snapshot")
    if rec["disposed_serial"] is not None:
        raise NotFound(f"snapshot {spec} was disposed of at serial {rec['disposed_serial']}")
    if at is not None and parse_time(rec["received"]) > at:
        raise BadInput(f"snapshot {spec} was taken after {at:%Y-%m-%d %H:%M:%S}Z")
    return rec


def _content(vault: Vault, rec: dict[str, Any]) -> Iterator[bytes]:
    entry = decode_entry(vault.ledger.entry(rec["serial"]))
    if entry.type is not EntryType.RECORD_APPEND or entry["record"] != rec["id"]:
        raise CorruptVault(f"ledger entry {rec['serial']} is not record {rec['id']}")
    m = vault.loader.manifest(rec["id"], entry["manifest"], rec["size"], rec["sha256"])
    yield from vault.loader.chunks(m)


def header(vault: Vault, rec: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's header line, reading only the chunks it is in."""
    buf = bytearray()
    for data in _content(vault, rec):
        buf += data
        if b"\n" in buf or len(buf) > _HEADER_MAX:
            break
    return parse_header(bytes(buf.partition(b"\n")[0]))


def load(vault: Vault, rec: dict[str, Any]) -> Manifest:
    """The whole manifest, its SHA-256 checked against the ledger, every node checked."""
    with tempfile.TemporaryFile() as f:
        vault.loader.write_content(rec, f)
        f.seek(0)
        return read_manifest(f)


# --- listing, diff, find --------------------------------------------------------------------


def list_snapshots(vault: Vault, source: str | None = None) -> list[dict[str, Any]]:
    out = []
    for rec in snapshot_rows(vault, source):
        h = header(vault, rec)
        out.append(
            {
                "snapshot": rec["id"],
                "time": rec["received"],
                "source": rec["source"],
                "paths": h.get("paths") or ([h["name"]] if h.get("name") else []),
                "tags": h.get("tags", []),
                "files": h.get("files", 0),
                "dirs": h.get("dirs", 0),
                "bytes": h.get("bytes", 0),
                "new_bytes": h.get("new_bytes", 0),
                "stored_bytes": h.get("stored_bytes", 0),
                "unchanged_files": h.get("unchanged_files", 0),
                "warnings": len(h.get("warnings", [])) + int(h.get("more_warnings", 0)),
                "retain_until": rec["retain_until"],
                "manifest_bytes": rec["size"],
            }
        )
    return out


def _content_key(n: Node) -> tuple[Any, ...]:
    return (n.type, n.size, tuple(c[4] for c in n.chunks), n.target, n.raw.get("rdev"))


def _meta_key(n: Node) -> tuple[Any, ...]:
    r = n.raw
    return (n.mode, r.get("uid"), r.get("gid"), r.get("mtime_ns"), r.get("xattrs"))


def diff(a: Manifest, b: Manifest) -> list[tuple[str, bytes]]:
    """(change, path) from ``a`` to ``b``: ``+`` added, ``-`` removed, ``M`` content or type
    changed, ``U`` metadata only (mode, owner, mtime, extended attributes)."""
    old = {n.path: n for n in a.nodes}
    new = {n.path: n for n in b.nodes}
    changes: list[tuple[str, bytes]] = []
    for p in sorted(old.keys() | new.keys()):
        x, y = old.get(p), new.get(p)
        if x is None:
            changes.append(("+", p))
        elif y is None:
            changes.append(("-", p))
        elif _content_key(x) != _content_key(y):
            changes.append(("M", p))
        elif _meta_key(x) != _meta_key(y):
            changes.append(("U", p))
    return changes


def find(
    vault: Vault, pattern: str, source: str | None = None
) -> list[tuple[dict[str, Any], Node]]:
    """Nodes whose path or name matches ``pattern`` (a glob), in every snapshot."""
    rx = re.compile(fnmatch.translate(pattern))
    hits = []
    for rec in snapshot_rows(vault, source):
        for n in load(vault, rec).nodes:
            text = show(n.path)
            if rx.match(text) or rx.match(text.rpartition("/")[2]) or rx.match("/" + text):
                hits.append((rec, n))
    return hits


# --- restore --------------------------------------------------------------------------------


@dataclass(slots=True)
class RestoreResult:
    snapshot: str
    target: str
    files: int = 0
    dirs: int = 0
    other: int = 0
    bytes: int = 0
    chunks: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot,
            "target": self.target,
            "files": self.files,
            "dirs": self.dirs,
            "other": self.other,
            "bytes": self.bytes,
            "chunks": self.chunks,
            "warnings": self.warnings,
        }


def select(m: Manifest, paths: list[str]) -> list[Node]:
    """The nodes at or under ``paths`` (all without paths). A hard link whose first name
    is not selected is restored as a copy of that file."""
    if not paths:
        chosen = list(m.nodes)
    else:
        wanted = [os.fsencode(p).strip(b"/") for p in paths]
        chosen = [
            n for n in m.nodes if any(n.path == w or n.path.startswith(w + b"/") for w in wanted)
        ]
        for w in wanted:
            if not any(n.path == w or n.path.startswith(w + b"/") for n in chosen):
                raise NotFound(f"{show(w)} is not in the snapshot")
    names = {n.path for n in chosen}
    files = m.files()
    out = []
    for n in chosen:
        if n.type == "hardlink" and n.target not in names:
            first = files[n.target or b""]
            out.append(Node(n.path, "file", n.mode, n.raw, first.size, first.chunks))
        else:
            out.append(n)
    return out


def _open_target(target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if os.listdir(fd):  # noqa: PTH208 (a descriptor)
            raise BadInput(
                f"restore target {target} is not empty",
                "Restore into a new or empty directory, then move what you need.",
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Restorer:
    def __init__(
        self, vault: Vault, root: int, progress: Callable[[int], None] | None, res: RestoreResult
    ) -> None:
        self.vault = vault
        self.root = root
        self.progress = progress
        self.res = res
        self.made: set[bytes] = set()
        self.is_root = os.geteuid() == 0
        self.short: dict[bytes, int] = {}  # files whose last bytes may be unwritten: size
        self.sizes: dict[bytes, int] = {}

    def warn(self, text: str) -> None:
        if len(self.res.warnings) < 100:
            self.res.warnings.append(text)

    def mkdirs(self, path: bytes) -> None:
        """``path`` and its missing parents (parents above the snapshot's roots)."""
        if not path or path in self.made:
            return
        self.mkdirs(path.rpartition(b"/")[0])
        try:
            os.mkdir(path, 0o700, dir_fd=self.root)
        except FileExistsError:
            st = os.stat(path, dir_fd=self.root, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                raise CorruptVault(f"{show(path)} exists and is not a directory") from None
        self.made.add(path)

    def create(self, nodes: list[Node]) -> dict[str, list[tuple[int, int, int, bytes, list[Any]]]]:
        """Directories and empty, full-size files; the chunk work per pack."""
        work: dict[tuple[str, int], tuple[int, int, bytes, list[tuple[bytes, int]]]] = {}
        for n in nodes:
            if n.type == "dir":
                self.mkdirs(n.path)
                self.res.dirs += 1
                continue
            self.mkdirs(n.parent)
            if n.type != "file":
                continue
            # created by the first chunk written to it (one open per small file); files
            # that get no write, or whose zero chunks are skipped, are sized afterwards
            if not n.size:
                self.short[n.path] = 0
            self.sizes[n.path] = n.size
            self.res.files += 1
            pos = 0
            for pack, off, length, plain, cid in n.chunks:
                w = work.get((pack, off))
                if w is None:
                    w = work[(pack, off)] = (length, plain, cid, [])
                elif w[2] != cid:
                    raise CorruptVault(f"two chunks at {pack}:{off} in one snapshot")
                w[3].append((n.path, pos))
                pos += plain
        by_pack: dict[str, list[tuple[int, int, int, bytes, list[Any]]]] = {}
        for (pack, off), (length, plain, cid, dests) in work.items():
            by_pack.setdefault(pack, []).append((off, length, plain, cid, dests))
        return by_pack

    def fetch(self, pack: str, chunks: list[tuple[int, int, int, bytes, list[Any]]]) -> None:
        """Read, check and write the chunks of one range of a pack."""
        start = chunks[0][0]
        end = chunks[-1][0] + chunks[-1][1]
        data = self.vault.store.get(pack, start, end - start)
        if len(data) != end - start:
            raise CorruptVault(f"pack {pack} is shorter than its chunks")
        keyring, hasher = self.vault.keyring, self.vault.hasher
        for off, length, plain_len, cid, dests in chunks:
            plain = open_blob(
                keyring, pack, cid, data[off - start : off - start + length], plain_len
            )
            if hasher.chunk_id(plain) != cid:
                raise CorruptVault(f"chunk {cid.hex()[:16]} in {pack} does not match its id")
            zero = plain[:1] == b"\0" and plain.count(0) == len(plain)
            for path, at in dests:
                if zero:  # a hole: the file is extended to its size afterwards
                    self.short[path] = self.sizes[path]
                else:
                    fd = os.open(path, _WRITE_FLAGS | os.O_CREAT, 0o600, dir_fd=self.root)
                    try:
                        view, pos = memoryview(plain), at
                        while view:
                            n = os.pwrite(fd, view, pos)
                            view, pos = view[n:], pos + n
                    finally:
                        os.close(fd)
                if self.progress:
                    self.progress(len(plain))
                self.res.bytes += len(plain)
            self.res.chunks += 1

    def content(self, by_pack: dict[str, list[tuple[int, int, int, bytes, list[Any]]]]) -> None:
        ranges: list[tuple[str, list[tuple[int, int, int, bytes, list[Any]]]]] = []
        for pack in sorted(by_pack):
            chunks = sorted(by_pack[pack], key=lambda c: c[0])
            cur: list[tuple[int, int, int, bytes, list[Any]]] = []
            for c in chunks:
                if cur and (
                    c[0] - (cur[-1][0] + cur[-1][1]) > RANGE_GAP
                    or c[0] + c[1] - cur[0][0] > RANGE_MAX
                ):
                    ranges.append((pack, cur))
                    cur = []
                cur.append(c)
            if cur:
                ranges.append((pack, cur))
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="restore") as pool:
            for f in [pool.submit(self.fetch, p, cs) for p, cs in ranges]:
                f.result()
        for path, size in self.short.items():
            fd = os.open(path, _WRITE_FLAGS | os.O_CREAT, 0o600, dir_fd=self.root)
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)

    def special(self, nodes: list[Node]) -> None:
        """Hard links, symbolic links, FIFOs, devices and sockets (after all content)."""
        for n in nodes:
            try:
                if n.type == "hardlink":
                    os.link(
                        n.target or b"",
                        n.path,
                        src_dir_fd=self.root,
                        dst_dir_fd=self.root,
                        follow_symlinks=False,
                    )
                    self.res.files += 1
                elif n.type == "symlink":
                    os.symlink(n.target or b"", n.path, dir_fd=self.root)
                    self.res.other += 1
                elif n.type == "fifo":
                    os.mkfifo(n.path, 0o600, dir_fd=self.root)
                    self.res.other += 1
                elif n.type in ("char", "block", "socket"):
                    kind = {"char": stat.S_IFCHR, "block": stat.S_IFBLK, "socket": stat.S_IFSOCK}
                    os.mknod(
                        n.path, 0o600 | kind[n.type], int(n.raw.get("rdev", 0)), dir_fd=self.root
                    )
                    self.res.other += 1
            except OSError as e:
                self.warn(f"{show(n.path)}: cannot create {n.type}: {e.strerror or e}")

    def metadata(self, n: Node) -> None:
        r = n.raw
        path, root = n.path, self.root
        try:
            if self.is_root and isinstance(r.get("uid"), int) and isinstance(r.get("gid"), int):
                os.chown(path, r["uid"], r["gid"], dir_fd=root, follow_symlinks=False)
            if n.type != "symlink":
                os.chmod(path, n.mode, dir_fd=root)
            xattrs = r.get("xattrs")
            if isinstance(xattrs, dict) and xattrs and n.type in ("file", "dir"):
                self._xattrs(n, xattrs)
            mtime, atime = r.get("mtime_ns"), r.get("atime_ns", r.get("mtime_ns"))
            if isinstance(mtime, int) and isinstance(atime, int):
                os.utime(path, ns=(atime, mtime), dir_fd=root, follow_symlinks=False)
        except FileNotFoundError:
            pass  # a node that could not be created (already warned)
        except OSError as e:
            self.warn(f"{show(path)}: cannot set metadata: {e.strerror or e}")

    def _xattrs(self, n: Node, xattrs: dict[str, Any]) -> None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        if n.type == "dir":
            flags |= os.O_DIRECTORY
        fd = os.open(n.path, flags, dir_fd=self.root)
        try:
            for name, value in xattrs.items():
                try:
                    os.setxattr(fd, name, base64.b64decode(value, validate=True))
                except (OSError, ValueError) as e:
                    why = e.strerror if isinstance(e, OSError) else "not base64"
                    self.warn(f"{show(n.path)}: cannot set extended attribute {name}: {why}")
        finally:
            os.close(fd)


def restore(
    vault: Vault,
    rec: dict[str, Any],
    target: Path,
    paths: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RestoreResult:
    m = load(vault, rec)
    nodes = select(m, paths or [])
    res = RestoreResult(rec["id"], str(target))
    vault.audit("restore", record=rec["id"], nodes=len(nodes))  # recorded before delivery
    root = _open_target(target)
    try:
        r = _Restorer(vault, root, progress, res)
        r.content(r.create(nodes))
        r.special(nodes)
        for n in nodes:
            if n.type != "dir":
                r.metadata(n)
        for n in reversed(nodes):  # deepest first, so a parent's mtime is set last
            if n.type == "dir":
                r.metadata(n)
    finally:
        os.close(root)
    return res


def restore_stream(vault: Vault, rec: dict[str, Any], path: str, out: BinaryIO) -> int:
    """One file of a snapshot to ``out``, chunk by chunk, each checked."""
    m = load(vault, rec)
    want = os.fsencode(path).strip(b"/")
    node = next((n for n in m.nodes if n.path == want), None)
    if node is None:
        raise NotFound(f"{path} is not in snapshot {rec['id']}")
    if node.type == "hardlink":
        node = m.files()[node.target or b""]
    if node.type != "file":
        raise BadInput(f"{path} is a {node.type}, not a file", "Use --target to restore it.")
    vault.audit("restore", record=rec["id"], nodes=1)
    total = 0
    keyring, hasher = vault.keyring, vault.hasher
    for pack, off, length, plain_len, cid in node.chunks:
        sealed = vault.store.get(pack, off, length)
        plain = open_blob(keyring, pack, cid, sealed, plain_len)
        if hasher.chunk_id(plain) != cid:
            raise CorruptVault(f"chunk {cid.hex()[:16]} in {pack} does not match its id")
        out.write(plain)
        total += len(plain)
    return total
