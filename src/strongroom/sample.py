"""The quick-start job: a sample of chat messages and files, ingested and verified.

``strongroom demo`` (``make run``) creates a vault under ``./var/vault`` unlocked by a
new key file ``./var/vault.key`` if none exists, writes a generated sample under
``./var/sample``, ingests it, verifies the vault and prints what to try next. The
sample is deterministic (seeded) so that re-running deduplicates instead of growing.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from strongroom.catalog import Query
from strongroom.crypto import new_key_file_text
from strongroom.vault.vault import Vault
from strongroom.vault.verify import verify

_USERS = [
    "alice@broker.example",
    "bob@broker.example",
    "carol@client.example",
    "dave@broker.example",
    "erin@client.example",
]
_CHANNELS = ["trading-desk", "compliance", "client-ABC", "ops"]
_WORDS = (
    "order fill price quote bond equity settle confirm client account trade limit market close "
    "open risk review approve rebate fee wire transfer position hedge"
).split()


def write_sample(root: Path, count: int, seed: int = 17) -> tuple[list[Path], list[Path]]:
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    chat_dir, file_dir = root / "chat", root / "files"
    chat_dir.mkdir(parents=True, exist_ok=True)
    file_dir.mkdir(parents=True, exist_ok=True)
    chats = []
    for i in range(count):
        frm, to = rng.sample(_USERS, 2)
        msg = {
            "id": f"msg-{i:06d}",
            "channel": rng.choice(_CHANNELS),
            "user": frm,
            "to": [to],
            "ts": 1_763_700_000_000 + i * 61_000,
            "message": " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 40))),
        }
        p = chat_dir / f"{msg['id']}.json"
        p.write_text(json.dumps(msg, sort_keys=True) + "\n")
        chats.append(p)
    bad = chat_dir / "msg-broken.json"
    bad.write_bytes(b'{"user": "mallory@x.example", "message": "truncated mid-')
    chats.append(bad)
    files = []
    for name, size in (("trade-blotter.csv", 40_000), ("statement.bin", 300_000)):
        p = file_dir / name
        if name.endswith(".csv"):
            lines = ["trade_id,account,symbol,qty,price"]
            lines += [
                f"T{i},ACC{rng.randint(1, 99)},XYZ,{rng.randint(1, 900)},{rng.uniform(1, 500):.2f}"
                for i in range(size // 30)
            ]
            p.write_text("\n".join(lines) + "\n")
        else:
            p.write_bytes(rng.randbytes(size))
        files.append(p)
    return chats, files


def run_demo(c: Any, count: int, ingest_paths: Callable[..., Any], out: Console) -> None:
    vault_path = Path(c.vault)
    if c.key_file is None and not os.environ.get("STRONGROOM_PASSPHRASE"):
        c.key_file = vault_path.parent / "vault.key"
        if not c.key_file.exists():
            c.key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(c.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(new_key_file_text())
    if not (vault_path / "store" / "objects" / "vault.json").exists():
        Vault.create(c.vault, c.secret(), c.options()).close()
        out.print(f"created a vault at {vault_path} (key file {c.key_file})")
    chats, files = write_sample(vault_path.parent / "sample", count)
    acked: list[Any] = []
    with Vault.open(c.vault, c.secret(), c.options()) as v:
        ingest_paths(v, chats, "chat", "demo-chat", acked.append)
        ingest_paths(v, files, "file", "demo-files", acked.append)
        new = sum(1 for r in acked if not r.duplicate)
        out.print(f"ingested {len(acked)} records ({new} new, {len(acked) - new} already archived)")
        flagged = [r for r in v.catalog.search(Query(), limit=10_000) if "unparsed" in r["flags"]]
        if flagged:
            out.print(
                f"{len(flagged)} malformed message(s) kept byte-exact and flagged 'unparsed'"
                f" (e.g. {flagged[0]['id']})"
            )
        report = verify(v)
        s = report.stats
        out.print(
            f"verify: {'OK' if report.ok else 'FAILED'} — {s['entries']} ledger entries, "
            f"{s['records']} records, {s['objects']} objects"
        )
        example = acked[0].record if acked else "<record id>"
    key = f" --key-file {c.key_file}" if c.key_file else ""
    exe = sys.argv[0] if "/" in sys.argv[0] else "strongroom"
    sr = f"{exe} --vault {c.vault}{key}"
    out.print("\nNext:")
    out.print(f"  {sr} search 'trade AND client'")
    out.print(f"  {sr} get {example}")
    out.print(f"  {sr} proof {example} -o proof.json && {exe} verify-proof proof.json")
    out.print(f"  {sr} hold place --query settle --reason 'matter 42'")
    out.print(f"  {sr} verify --json")
    if not report.ok:
        raise SystemExit(1)
