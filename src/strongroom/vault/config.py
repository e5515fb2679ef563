"""The vault's config object (``vault.json``) and the local state directory.

``vault.json`` is written once at ``init`` and never changed (docs/formats/vault-config.md).
It is public: it holds the vault id, the checkpoint origin and public key, how the
master key is derived (KDF parameters or "key file"), the master key's check value
and the retention mode chosen at init. Later changes of mode are ledger entries.

Mutable, local, non-authoritative state (catalog, compliance-clock high-water mark,
the last checkpoint seen, the writer lock) lives in a state directory: ``<vault>/state``
for a local vault.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from strongroom.core.retention import format_time, parse_time
from strongroom.crypto import KdfParams
from strongroom.errors import CorruptVault, DiskFull, StorageError
from strongroom.store.base import RetentionMode

FORMAT = "strongroom-vault"
VERSION = 1
CONFIG_NAME = "vault.json"
_VAULT_ID = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")  # the alphabet new_vault_id draws from


def new_vault_id() -> str:
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(26))


@dataclass(frozen=True, slots=True)
class VaultConfig:
    vault_id: str
    origin: str
    created: datetime
    kdf: KdfParams | None  # None: the master key comes from a key file
    check: bytes
    public_key: str  # C2SP vkey of the checkpoint signing key
    mode: RetentionMode

    def to_bytes(self) -> bytes:
        obj = {
            "format": FORMAT,
            "version": VERSION,
            "vault_id": self.vault_id,
            "origin": self.origin,
            "created": format_time(self.created),
            "kdf": self.kdf.to_json() if self.kdf else "key-file",
            "check": base64.b64encode(self.check).decode(),
            "public_key": self.public_key,
            "mode": str(self.mode),
        }
        return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()

    @staticmethod
    def from_bytes(data: bytes, where: str) -> VaultConfig:
        remedy = "Check that --vault points at a Strongroom vault."
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptVault(f"{where} is not valid JSON: {e}", remedy) from e
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise CorruptVault(f"{where} is not a Strongroom vault config", remedy)
        if obj.get("version") != VERSION:
            raise CorruptVault(
                f"{where} has format version {obj.get('version')!r}; "
                f"this strongroom reads {VERSION}",
                "Use the strongroom release that created this vault, or a newer one.",
            )
        try:
            kdf_raw: Any = obj["kdf"]
            vault_id = str(obj["vault_id"])
            if not _VAULT_ID.match(vault_id):
                raise ValueError(f"bad vault id {vault_id!r}")
            if obj["origin"] != f"strongroom.vault/{vault_id}":
                raise ValueError(f"origin {obj['origin']!r} does not name vault {vault_id}")
            check = base64.b64decode(obj["check"], validate=True)
            if len(check) != 32:
                raise ValueError("check value is not 32 bytes")
            return VaultConfig(
                vault_id=vault_id,
                origin=str(obj["origin"]),
                created=parse_time(str(obj["created"])),
                kdf=None if kdf_raw == "key-file" else KdfParams.from_json(kdf_raw),
                check=check,
                public_key=str(obj["public_key"]),
                mode=RetentionMode(obj["mode"]),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise CorruptVault(f"{where} is malformed: {e}", remedy) from e
        except CorruptVault as e:
            raise CorruptVault(f"{where} is malformed: {e.message}", remedy) from e


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` durably: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"no space left on the device (disk full) while writing {path}") from e
        raise StorageError(f"cannot write {path}: {e.strerror or e}") from e
