"""Inclusion proofs an outsider can check, and rebuilding the catalog.

A proof document (docs/formats/proof.md) carries the record's ledger entry (its exact
bytes), its leaf index, the RFC 9162 audit path to the root of a tree size, and the
signed checkpoint (C2SP note) for that size with the vault's public key (C2SP vkey).
:func:`check_proof` needs nothing else: no vault, no keys — it is what
``strongroom verify-proof`` runs, and any RFC 9162 implementation can do the same.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from strongroom.catalog import Catalog
from strongroom.core import merkle
from strongroom.core.checkpoint import Checkpoint, open_note, parse_vkey
from strongroom.core.entries import decode_entry
from strongroom.errors import BadInput, NotFound, VerificationFailed
from strongroom.vault.indexer import Indexer
from strongroom.vault.vault import Vault

FORMAT = "strongroom-inclusion-proof-v1"


def make_proof(vault: Vault, record_id: str, *, audit: bool = True) -> dict[str, Any]:
    rec = vault.catalog.record(record_id)
    if rec is None:
        raise NotFound(f"no record {record_id!r} in this vault")
    if audit:
        vault.audit("proof", record=record_id)
    serial = int(rec["serial"])
    size = vault.ledger.checkpoint_size
    note = vault.ledger.checkpoint_note(size)
    entry = vault.ledger.entry(serial)
    path = vault.ledger.inclusion_proof(serial, size)
    cp = vault.ledger.read_checkpoint(size)
    merkle.verify_inclusion(merkle.leaf_hash(entry), serial, size, path, cp.root)
    return {
        "format": FORMAT,
        "record": record_id,
        "origin": vault.config.origin,
        "public_key": vault.config.public_key,
        "leaf_index": serial,
        "tree_size": size,
        "entry": entry.decode("utf-8"),
        "entry_sha256": hashlib.sha256(entry).hexdigest(),
        "leaf_hash": merkle.leaf_hash(entry).hex(),
        "inclusion_path": [h.hex() for h in path],
        "root_hash": cp.root.hex(),
        "checkpoint": note.decode("utf-8"),
        "hashing": "RFC 9162 section 2.1: leaf = SHA-256(0x00 || entry), "
        "node = SHA-256(0x01 || left || right)",
    }


def check_proof(doc: dict[str, Any], trusted_vkey: str | None = None) -> Checkpoint:
    """Raise VerificationFailed unless ``doc`` proves its entry is in a signed tree.

    Every field that states something is checked against what it claims: the record id
    and origin against the signed entry and checkpoint, the convenience hashes against
    their recomputation. Returns the verified checkpoint (print *its* origin, not the
    document's).
    """
    try:
        if doc.get("format") != FORMAT:
            raise BadInput(f"not a {FORMAT} document")
        vkey_text = trusted_vkey or str(doc["public_key"])
        name, _, pub = parse_vkey(vkey_text)
        cp = open_note(str(doc["checkpoint"]).encode(), [(name, pub)], origin=name)
        if doc.get("origin") != cp.origin:
            raise BadInput(f"document names origin {doc.get('origin')!r}, checkpoint {cp.origin!r}")
        entry = str(doc["entry"]).encode("utf-8")
        e = decode_entry(entry)  # canonical, known version
        if "record" in doc and e.get("record") != doc["record"]:
            raise BadInput(
                f"document names record {doc['record']!r}, the entry {e.get('record')!r}"
            )
        index, size = int(doc["leaf_index"]), int(doc["tree_size"])
        if size != cp.size:
            raise BadInput(f"proof is for tree size {size}, checkpoint has {cp.size}")
        leaf = merkle.leaf_hash(entry)
        for field, value in (
            ("leaf_hash", leaf.hex()),
            ("root_hash", cp.root.hex()),
            ("entry_sha256", hashlib.sha256(entry).hexdigest()),
        ):
            if field in doc and doc[field] != value:
                raise BadInput(f"{field} does not match the entry and checkpoint")
        path = [bytes.fromhex(h) for h in doc["inclusion_path"]]
        merkle.verify_inclusion(leaf, index, size, path, cp.root)
    except (KeyError, TypeError, ValueError, AttributeError, BadInput) as e:
        raise VerificationFailed(
            f"proof does not verify: {e}",
            "The entry, path or checkpoint was altered, or the key is not the vault's.",
        ) from e
    return cp


def rebuild_catalog(vault: Vault, path: Path, upto: int | None = None) -> Catalog:
    """A fresh catalog at ``path`` built from the ledger and the store only."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    cat = Catalog(path)
    vault.loader.forget()
    indexer = Indexer(cat, vault.loader)
    end = vault.ledger.size if upto is None else upto
    indexer.apply_all((serial, decode_entry(data)) for serial, data in vault.ledger.entries(0, end))
    return cat
