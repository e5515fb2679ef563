"""The snapshot manifest: what a backup snapshot's record holds (docs/formats/snapshot.md).

A snapshot is one record of class ``backup.snapshot``. Its raw content — what the
ledger hashes, what ``strongroom get`` returns — is this manifest: UTF-8 JSON lines, a
header line first, then one line per file system node in walk order (a directory
before what it contains). A regular file's line names its chunks as
``[pack, offset, length, plain length, keyed chunk id]``: ordinary vault chunks, which
the snapshot record lists (by pack) in its ``refs`` so that they are retained, held and
verified with it.

Everything read back from a manifest is checked before use (:func:`parse_node`): the
vault authenticates the bytes, but a restore must not trust a path to stay inside its
target because of that alone.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from strongroom.errors import CorruptVault

FORMAT = "strongroom-snapshot"
VERSION = 1
SNAPSHOT_CLASS = "backup.snapshot"
MAX_PATH = 4095  # bytes; Linux's PATH_MAX less the terminating NUL
MAX_LINE = 16 << 20  # a node line (a file of very many chunks) may not be longer

# node types, and the stat type each one restores as
TYPES = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "hardlink": stat.S_IFREG,
    "fifo": stat.S_IFIFO,
    "char": stat.S_IFCHR,
    "block": stat.S_IFBLK,
    "socket": stat.S_IFSOCK,
}
_EXTRACTED = (
    "type", "path", "path_b64", "mode", "size", "chunks", "sha256", "target", "target_b64",
    "link", "link_b64", "user", "group", "inode", "ctime_ns",
)  # fmt: skip
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_PACK = re.compile(r"packs/[0-9]{4}-[0-9]{2}/[0-9a-f]{32}\Z")


def type_of(mode: int) -> str | None:
    for name, fmt in TYPES.items():
        if name != "hardlink" and stat.S_IFMT(mode) == fmt:
            return name
    return None


def put_bytes(node: dict[str, Any], key: str, value: bytes) -> None:
    """A name as ``key`` (UTF-8 text) or, when it is not UTF-8, ``key_b64``."""
    try:
        node[key] = value.decode("utf-8")
    except UnicodeDecodeError:
        node[key + "_b64"] = base64.b64encode(value).decode("ascii")


def get_bytes(node: Mapping[str, Any], key: str) -> bytes | None:
    if key in node:
        v = node[key]
        if not isinstance(v, str):
            raise CorruptVault(f"snapshot node: {key} is not text")
        return v.encode("utf-8")
    if key + "_b64" in node:
        try:
            return base64.b64decode(node[key + "_b64"], validate=True)
        except (ValueError, TypeError) as e:
            raise CorruptVault(f"snapshot node: {key}_b64 is not base64") from e
    return None


def show(path: bytes) -> str:
    """A path for people: UTF-8, with undecodable bytes as ``\\xNN``."""
    return path.decode("utf-8", "backslashreplace")


def encode_line(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def check_path(path: bytes, what: str = "path") -> bytes:
    """A relative path with no empty, ``.`` or ``..`` component and no NUL: it cannot
    name anything outside the directory it is resolved in."""
    if not path or len(path) > MAX_PATH or b"\0" in path or path.startswith(b"/"):
        raise CorruptVault(f"snapshot {what} {show(path)!r} is not a safe relative path")
    for part in path.split(b"/"):
        if part in (b"", b".", b".."):
            raise CorruptVault(f"snapshot {what} {show(path)!r} is not a safe relative path")
    return path


def _int(node: Mapping[str, Any], key: str, default: int | None = None) -> int:
    v = node.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise CorruptVault(f"snapshot node: {key} is not an integer")
    return v


@dataclass(slots=True)
class Node:
    """One checked node of a manifest."""

    path: bytes
    type: str
    mode: int
    raw: dict[str, Any]
    size: int = 0
    chunks: list[tuple[str, int, int, int, bytes]] = field(default_factory=list)
    target: bytes | None = None  # symlink target, or the first name of a hard link

    @property
    def parent(self) -> bytes:
        return self.path.rpartition(b"/")[0]


def parse_node(raw: Any) -> Node:
    if not isinstance(raw, dict):
        raise CorruptVault("snapshot node is not an object")
    path = get_bytes(raw, "path")
    if path is None:
        raise CorruptVault("snapshot node has no path")
    check_path(path)
    kind = raw.get("type")
    if kind not in TYPES:
        raise CorruptVault(f"snapshot node {show(path)!r}: unknown type {kind!r}")
    mode = _int(raw, "mode", 0o644)
    if not 0 <= mode <= 0o7777:
        raise CorruptVault(f"snapshot node {show(path)!r}: bad mode {mode}")
    node = Node(path, kind, mode, raw)
    if kind == "file":
        node.size = _int(raw, "size", 0)
        total = 0
        chunks = raw.get("chunks", [])
        if not isinstance(chunks, list):
            raise CorruptVault(f"snapshot node {show(path)!r}: chunks is not a list")
        for c in chunks:
            if not (
                isinstance(c, list)
                and len(c) == 5
                and isinstance(c[0], str)
                and _PACK.match(c[0])
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in c[1:4])
                and isinstance(c[4], str)
                and _HEX64.match(c[4])
            ):
                raise CorruptVault(f"snapshot node {show(path)!r}: malformed chunk {c!r:.80}")
            node.chunks.append((sys.intern(c[0]), c[1], c[2], c[3], bytes.fromhex(c[4])))
            total += c[3]
        if total != node.size or node.size < 0:
            raise CorruptVault(
                f"snapshot node {show(path)!r}: chunks add up to {total}, size is {node.size}"
            )
    elif kind == "symlink":
        node.target = get_bytes(raw, "target")
        if not node.target or b"\0" in node.target or len(node.target) > MAX_PATH:
            raise CorruptVault(f"snapshot node {show(path)!r}: bad symlink target")
    elif kind == "hardlink":
        target = get_bytes(raw, "link")
        node.target = check_path(target or b"", "hard link")
    # what was taken out above need not be kept twice (a manifest of many files is held
    # whole in memory by restore): raw keeps owner, times, xattrs, rdev and flags
    for key in _EXTRACTED:
        raw.pop(key, None)
    return node


@dataclass(slots=True)
class Manifest:
    """A parsed snapshot: header and nodes, checked as a whole (unique paths; every
    node's parent is a directory of the snapshot, or above the snapshot's roots; hard
    links name a file before them)."""

    header: dict[str, Any]
    nodes: list[Node]

    def files(self) -> dict[bytes, Node]:
        return {n.path: n for n in self.nodes if n.type == "file"}


def parse_header(line: bytes) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptVault(f"snapshot header is not JSON: {e}") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CorruptVault("not a Strongroom snapshot manifest")
    if header.get("version") != VERSION:
        raise CorruptVault(f"unknown snapshot manifest version {header.get('version')!r}")
    return header


def iter_lines(f: IO[bytes]) -> Iterator[bytes]:
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE or not line.endswith(b"\n"):
            raise CorruptVault("snapshot manifest has an overlong or unterminated line")
        yield line


def read_manifest(f: IO[bytes]) -> Manifest:
    lines = iter_lines(f)
    first = next(lines, None)
    if first is None:
        raise CorruptVault("snapshot manifest is empty")
    header = parse_header(first)
    nodes: list[Node] = []
    kinds: dict[bytes, str] = {}
    implied: set[bytes] = set()  # parents that are no node (yet): restored as directories
    for line in lines:
        try:
            raw = json.loads(line)
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptVault(f"snapshot node is not JSON: {e}") from e
        node = parse_node(raw)
        if node.path in kinds:
            raise CorruptVault(f"snapshot names {show(node.path)!r} twice")
        parent = node.parent
        if parent and kinds.get(parent, "dir") != "dir":
            raise CorruptVault(f"snapshot node {show(node.path)!r} is inside a non-directory")
        if parent and parent not in kinds:
            implied.add(parent)
        if node.path in implied and node.type != "dir":
            raise CorruptVault(f"snapshot node {show(node.path)!r} has content but is no directory")
        if node.type == "hardlink" and kinds.get(node.target or b"") != "file":
            raise CorruptVault(f"snapshot hard link {show(node.path)!r} names no earlier file")
        kinds[node.path] = node.type
        nodes.append(node)
    if header.get("nodes") != len(nodes):
        raise CorruptVault(
            f"snapshot header counts {header.get('nodes')} nodes, the manifest holds {len(nodes)}"
        )
    return Manifest(header, nodes)
