"""Helpers shared by the durability tests (``test_crash.py``, ``test_disk_full.py``).

:func:`check_store_objects` reads a local store's ``objects/`` directory directly
(no :class:`LocalStore`, whose opening would already clean ``tmp/``) and checks that
every file in it is a complete, well-formed object: a torn or half-written object
must never be visible under its final name, whatever happened to the writer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strongroom.core.checkpoint import Verifier, open_note, parse_vkey
from strongroom.core.entries import decode_entry
from strongroom.core.tiles import decode_bundle, parse_tile_path
from strongroom.crypto import (
    ChunkHasher,
    Keyring,
    MasterKey,
    load_key_file,
    unwrap_data_key,
    unwrap_signing_key,
)
from strongroom.errors import StrongroomError
from strongroom.store.base import check_name
from strongroom.store.local import LockState
from strongroom.vault.config import CONFIG_NAME, VaultConfig
from strongroom.vault.packs import (
    BlobKind,
    index_location,
    iter_blobs,
    open_blob,
    parse_header,
    parse_index,
)

HASH = 32


def object_files(store_dir: Path) -> list[str]:
    """Names (relative paths) of every non-directory entry under ``store_dir/objects``."""
    base = store_dir / "objects"
    out: list[str] = []
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            out.append((Path(dirpath) / f).relative_to(base).as_posix())
    return sorted(out)


def check_store_objects(
    store_dir: Path, key_file: Path, parsed: set[str] | None = None
) -> list[str]:
    """Problems found in the objects of the store at ``store_dir`` (empty: all good).

    Every file under ``objects/`` must be a regular file with a valid object name and
    a lock file recording its size, and must parse completely for its kind: the
    config, the wrapped keys, every pack (header, sealed index, every blob
    authenticates and every chunk matches its keyed id), every entry bundle (its
    width of canonical entries), every hash tile (its width of hashes) and every
    checkpoint (signed by the vault key, named by its size).

    Objects are immutable, so a caller checking the same store repeatedly can pass a
    set ``parsed``: names in it are not parsed again (their lock file and size still
    are), and names that parse cleanly are added to it.
    """
    problems: list[str] = []
    objects, locks = store_dir / "objects", store_dir / "locks"
    names = object_files(store_dir)
    if not names:
        return problems
    master = load_key_file(key_file)
    config: VaultConfig | None = None
    if CONFIG_NAME in names:
        try:
            config = VaultConfig.from_bytes((objects / CONFIG_NAME).read_bytes(), CONFIG_NAME)
        except StrongroomError as e:
            problems.append(f"{CONFIG_NAME}: {e}")
    keys = []
    for name in names:
        if name.startswith("keys/") and "/data/" in name:
            try:
                keys.append(unwrap_data_key(master, (objects / name).read_bytes()))
            except StrongroomError as e:
                problems.append(f"{name}: wrapped data key does not open: {e}")
    keyring = Keyring(keys) if keys else None
    hasher = master.chunk_hasher()
    verifier: list[Verifier] | None = None
    if config is not None:
        _, _, pub = parse_vkey(config.public_key)
        verifier = [(config.origin, pub)]
    for name in names:
        path = objects / name
        st = os.lstat(path)
        if not os.path.isfile(path) or os.path.islink(path):
            problems.append(f"{name}: not a regular file (mode {st.st_mode:o})")
            continue
        try:
            check_name(name)
        except StrongroomError as e:
            problems.append(f"{name}: a file with an invalid object name is visible: {e}")
            continue
        try:
            state = LockState.from_json(name, (locks / f"{name}.json").read_bytes(), name)
        except FileNotFoundError:
            problems.append(f"{name}: visible object without a lock file")
        except StrongroomError as e:
            problems.append(f"{name}: {e}")
        else:
            if state.size != st.st_size:
                problems.append(f"{name}: {st.st_size} bytes, lock file records {state.size}")
        if parsed is not None and name in parsed:
            continue
        try:
            found = _check_one(name, path.read_bytes(), master, keyring, hasher, verifier)
        except (StrongroomError, ValueError) as e:
            found = [f"{name}: does not parse: {e}"]
        problems.extend(found)
        if parsed is not None and not found:
            parsed.add(name)
    return problems


def _check_one(
    name: str,
    data: bytes,
    master: MasterKey,
    keyring: Keyring | None,
    hasher: ChunkHasher,
    verifier: list[Verifier] | None,
) -> list[str]:
    if name == CONFIG_NAME:
        return []  # parsed above
    if name.startswith("keys/") and name.endswith("/signing"):
        unwrap_signing_key(master, data)  # keys/<vault id>/signing
        return []
    if name.startswith("keys/") and "/data/" in name:
        return []  # unwrapped above
    if name.startswith("packs/"):
        if keyring is None:
            return [f"{name}: a pack but no data key is stored"]
        parse_header(data, name)
        off, length = index_location(data[-8:], len(data), name)
        rows = parse_index(data[off : off + length], keyring, name)
        out = []
        for row, sealed in iter_blobs(data, rows):
            plain = open_blob(keyring, name, row.blob_id, sealed, row.plain_len)
            if row.kind == BlobKind.CHUNK and hasher.chunk_id(plain) != row.blob_id:
                out.append(f"{name}: chunk {row.blob_id.hex()[:16]} does not match its id")
        return out
    if name.startswith("tile/"):
        level, _index, width = parse_tile_path(name)
        if level == "entries":
            entries = decode_bundle(data)
            if len(entries) != width:
                return [f"{name}: bundle holds {len(entries)} entries, its name says {width}"]
            for e in entries:
                decode_entry(e)
            return []
        if len(data) != width * HASH:
            return [f"{name}: hash tile is {len(data)} bytes, expected {width * HASH}"]
        return []
    if name.startswith("checkpoints/"):
        if verifier is None:
            return [f"{name}: a checkpoint but no {CONFIG_NAME}"]
        cp = open_note(data, verifier)
        if name != f"checkpoints/{cp.size:020d}":
            return [f"{name}: names size {cp.size}"]
        return []
    return [f"{name}: unexpected object"]


def run_cli(
    vault_dir: Path, key: Path, *args: str | Path, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """The real ``strongroom`` command on a vault, unlocked by a key file, with no
    STRONGROOM_* settings inherited from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    cmd = [
        sys.executable,
        "-m",
        "strongroom",
        "--vault",
        str(vault_dir),
        "--key-file",
        str(key),
        *map(str, args),
    ]
    return subprocess.run(cmd, capture_output=True, env=env, timeout=timeout, check=False)


# --- CLI helpers for the S3 and replica tests -------------------------------------------

Run = Callable[..., "subprocess.CompletedProcess[bytes]"]


def ingest_files(run: Run, where: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    """Write ``files`` under ``where``, ``ingest --json`` them; record id -> content."""
    paths = []
    for name, data in files.items():
        (where / name).write_bytes(data)
        paths.append(where / name)
    lines = run("ingest", *paths, "--json").stdout.decode().splitlines()
    return {json.loads(x)["record"]: d for x, d in zip(lines, files.values(), strict=True)}


def verify_report(run: Run) -> dict[str, Any]:
    """``verify --json``; its exit code must agree with the report's ``ok``."""
    p = run("verify", "--json", check=False)
    report: dict[str, Any] = json.loads(p.stdout)
    assert (p.returncode == 0) == report["ok"], p.stderr
    return report


def failed_checks(report: dict[str, Any]) -> dict[str, list[str]]:
    """Name of each failed check -> the objects it names."""
    return {c["name"]: c["objects"] for c in report["checks"] if not c["ok"]}
