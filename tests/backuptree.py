"""Build a directory tree holding every kind of file this platform allows, and describe a
tree (content hashes and metadata) so that two trees can be compared. Used by the backup
tests; paths may be longer than PATH_MAX once restored under a target, so everything
here works relative to directory descriptors (``os.fwalk``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import stat
from pathlib import Path
from typing import Any

LONG_PATH = 3900  # bytes: the deepest file's absolute path, close to PATH_MAX (4096)


def xattrs_supported(where: Path) -> bool:
    probe = where / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.strongroom", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def build_tree(root: Path, seed: int = 7) -> dict[str, Any]:
    """Every file type and the awkward cases; returns what was made (for the tests)."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    made: dict[str, Any] = {"root": root}
    (root / "empty").write_bytes(b"")
    (root / "text.txt").write_text("chat: buy 100 XYZ\n" * 50)
    (root / "random.bin").write_bytes(rng.randbytes(700_000))  # several CDC chunks
    (root / "dup-a.bin").write_bytes(b"same content " * 1000)
    (root / "dup-b.bin").write_bytes(b"same content " * 1000)
    # sparse: 24 MiB with data only at both ends
    with (root / "sparse.img").open("wb") as f:
        f.write(b"head" * 1000)
        f.seek(24 << 20)
        f.write(b"tail" * 1000)
    # hard links, also across directories
    (root / "dir").mkdir()
    (root / "linked").write_bytes(b"one inode, three names\n")
    os.link(root / "linked", root / "linked-2")
    os.link(root / "linked", root / "dir" / "linked-3")
    # symbolic links: relative, absolute, dangling, to a directory
    os.symlink("text.txt", root / "sym-rel")
    os.symlink("/etc/hostname", root / "sym-abs")
    os.symlink("does/not/exist", root / "sym-dangling")
    os.symlink("dir", root / "sym-dir")
    os.mkfifo(root / "fifo")
    os.mknod(root / "socket", 0o600 | stat.S_IFSOCK)
    if os.geteuid() == 0:
        os.mknod(root / "null-dev", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(root / "block-dev", 0o660 | stat.S_IFBLK, os.makedev(7, 200))
        (root / "owned").write_bytes(b"owned by someone else\n")
        os.chown(root / "owned", 1234, 5678)
        os.lchown(root / "sym-rel", 4321, 8765)
    # odd names: a newline, bytes that are not UTF-8, spaces, non-ASCII, a leading dash
    odd = os.fsencode(root) + b"/odd"
    os.mkdir(odd)
    for odd_name in (b"new\nline", b"\xff\xfe not utf-8", b"sp ace", "caf\u00e9".encode(), b"-d"):
        with open(odd + b"/" + odd_name, "wb") as f:
            f.write(odd_name * 3)
    # permissions: setuid, sticky directory, read-only file and directory, no permissions
    (root / "perm").mkdir()
    for name, mode in (("setuid", 0o4755), ("readonly", 0o444), ("none", 0o000), ("x", 0o711)):
        (root / "perm" / name).write_bytes(name.encode())
        os.chmod(root / "perm" / name, mode)
    (root / "perm" / "sticky").mkdir()
    os.chmod(root / "perm" / "sticky", 0o1777)
    (root / "perm" / "ro-dir").mkdir()
    (root / "perm" / "ro-dir" / "inside").write_bytes(b"in a read-only directory")
    os.chmod(root / "perm" / "ro-dir", 0o555)
    # a very long path: 255-byte names, nested until the path is close to PATH_MAX
    deep = os.fsencode(root) + b"/long"
    os.mkdir(deep)
    while len(deep) + 256 + 256 < LONG_PATH:
        deep += b"/" + b"d" * 200
        os.mkdir(deep)
    leaf = b"n" * min(255, LONG_PATH - len(deep) - 1)  # a name of the maximum length
    with open(deep + b"/" + leaf, "wb") as f:
        f.write(b"deep down")
    made["deep"] = deep + b"/" + leaf
    # extended attributes where the file system has them
    if xattrs_supported(root):
        os.setxattr(root / "text.txt", "user.comment", b"checked by compliance")
        os.setxattr(root / "dir", "user.project", b"\x00binary\xff")
        made["xattrs"] = True
    # times to the nanosecond, also on a directory and a symlink
    os.utime(root / "text.txt", ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    os.utime(root / "sym-rel", ns=(1_400_000_000_000_000_001, 1_400_000_000_000_000_001),
             follow_symlinks=False)  # fmt: skip
    os.utime(root / "dir", ns=(1_300_000_000_000_000_000, 1_300_000_000_000_000_000))
    return made


def describe(top: Path | bytes) -> dict[bytes, tuple[Any, ...]]:
    """relative path -> (type, mode, uid, gid, size, content SHA-256, mtime_ns, link
    target, rdev, xattrs, hard-link group) for everything under ``top``."""
    out: dict[bytes, tuple[Any, ...]] = {}
    groups: dict[tuple[int, int], bytes] = {}
    top_b = os.fsencode(top)
    for dirpath, dirnames, filenames, dirfd in os.fwalk(top_b, follow_symlinks=False):
        rel_dir = dirpath[len(top_b) :].lstrip(b"/")
        for name in [*dirnames, *filenames]:
            rel = (rel_dir + b"/" + name).lstrip(b"/")
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            digest = target = xattrs = None
            if stat.S_ISREG(st.st_mode):
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dirfd)
                h = hashlib.sha256()
                with os.fdopen(fd, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                    with contextlib.suppress(OSError):
                        xattrs = {
                            n: os.getxattr(f.fileno(), n) for n in sorted(os.listxattr(f.fileno()))
                        }
                digest = h.hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(name, dir_fd=dirfd)
            elif stat.S_ISDIR(st.st_mode):
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dirfd)
                try:
                    with contextlib.suppress(OSError):
                        xattrs = {n: os.getxattr(fd, n) for n in sorted(os.listxattr(fd))}
                finally:
                    os.close(fd)
            group = None
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                group = groups.setdefault((st.st_dev, st.st_ino), rel)
            out[rel] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                st.st_size if not stat.S_ISDIR(st.st_mode) else None,
                digest,
                st.st_mtime_ns,
                target,
                st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else None,
                xattrs or None,
                group,
            )
    return out


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512
