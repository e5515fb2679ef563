"""Crash safety: SIGKILL the writer anywhere; nothing acknowledged is lost or torn.

ARCHITECTURE.md (vault layer): "Group commit for throughput; an append is
acknowledged only once its objects and ledger entry are durable." REQUIREMENTS.md
F2-ii: the system verifies automatically the completeness and accuracy of storing
and retaining records. So after a crash at any moment:

- every record whose acknowledgement was seen is present and reads back byte-exact;
- ``verify`` passes (ledger, tiles, checkpoints, packs, retention, catalog);
- no object under ``store/objects/`` is torn: every file there parses completely;
- the vault opens (rolling forward past the crash) and ingest goes on.

A child process (``tests/helpers/ingest_loop.py``) appends deterministic records in
batches of 1..50 and prints each acknowledged one; the parent kills it with SIGKILL
at 22 seeded random moments (every fourth right after start, landing in start-up and
open), then checks everything above and starts the next child with the next seed.
For deterministic coverage of the commit window, some children SIGKILL themselves at
chosen points: after the K-th fsync, or right after an entry bundle, a pack or a
checkpoint is stored; after an entry-bundle kill a second child is started at once
and dies during the roll-forward that its open performs (crash during recovery).

A second test kills ``init`` (``Vault.create``) just before each of its fsyncs in
turn and at random moments: afterwards there is either no vault (``open`` raises
VaultNotFound, and ``init`` can be run again) or a complete one (it opens, its ledger
starts with the ``vault.init`` entry, and it verifies).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from strongroom.core.checkpoint import parse_vkey
from strongroom.core.entries import EntryType, decode_entry
from strongroom.crypto import new_key_file_text
from strongroom.errors import StrongroomError, VaultNotFound
from strongroom.store.local import LocalStore
from strongroom.vault.config import VaultConfig
from strongroom.vault.ledger import Ledger
from strongroom.vault.vault import Options, Secret, Vault
from strongroom.vault.verify import Report, verify
from tests.helpers import check_store_objects, object_files, run_cli
from tests.helpers.ingest_loop import record_bytes

if TYPE_CHECKING:
    from tests.conftest import Cli

HELPER = Path(__file__).parent / "helpers" / "ingest_loop.py"
TIMED_KILLS = 22  # parent-timed SIGKILLs (the brief: at least 20)
SELF_KILL_TIMEOUT = 60.0


def _options() -> Options:
    return Options(actor="user:crash-test", kdf_strength="test")


@dataclass(frozen=True, slots=True)
class Acked:
    record: str
    sha256: str
    seed: int
    n: int


@dataclass(frozen=True, slots=True)
class Round:
    """One child run: killed by the parent after ``delay`` (``args`` empty) or killing
    itself as ``args`` say; ``then``: a second self-killing child run right after,
    before the parent reopens the vault, so that it dies in the crash recovery."""

    delay: float = 0.0
    args: tuple[str, ...] = ()
    then: tuple[str, ...] = ()

    @property
    def how(self) -> str:
        return self.args[0].removeprefix("--die-after-") if self.args else "timed"

    def describe(self) -> str:
        first = " ".join(self.args) if self.args else f"killed after {self.delay:.3f}s"
        return f"{first}, then {' '.join(self.then)}" if self.then else first


def _plan(rng: random.Random) -> list[Round]:
    """Parent-timed kills, with deterministic self-kill rounds mixed in."""
    rounds: list[Round] = []
    for i in range(TIMED_KILLS):
        # every fourth kill lands right after start: imports, open
        delay = rng.uniform(0.02, 0.35) if i % 4 == 0 else rng.uniform(0.35, 1.2)
        rounds.append(Round(delay))
    self_kills = [
        # entries durable, their tiles and checkpoint not: open must roll forward; the
        # next child dies during that roll-forward (its first fsyncs are recovery's)
        Round(
            args=("--die-after-put", "tile/entries/", str(rng.randint(1, 8))),
            then=("--die-after-fsync", str(rng.randint(1, 3))),
        ),
        Round(
            args=("--die-after-put", "tile/entries/", str(rng.randint(1, 8))),
            then=("--die-after-fsync", str(rng.randint(4, 8))),
        ),
        # a checkpoint stored, but not yet the host's copy, the catalog, the acks
        Round(args=("--die-after-put", "checkpoints/", str(rng.randint(2, 8)))),
        # a pack stored that no entry will reference
        Round(args=("--die-after-put", "packs/", str(rng.randint(1, 20)))),
        # anywhere between two durable steps
        Round(args=("--die-after-fsync", str(rng.randint(4, 250)))),
        Round(args=("--die-after-fsync", str(rng.randint(4, 250)))),
    ]
    for pos, r in zip([3, 7, 11, 15, 19, 23], self_kills, strict=True):
        rounds.insert(pos, r)
    return rounds


def _read_lines(path: Path) -> list[dict[str, object]]:
    """Complete JSON lines the child wrote (a line cut by the kill was never seen)."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    return [json.loads(line) for line in lines[:-1] if line]


def _run_child(
    args: tuple[str, ...], delay: float, vault_dir: Path, key: Path, seed: int, work: Path
) -> list[dict[str, object]]:
    """Run the ingest loop until it is killed: by us after ``delay`` if ``args`` is empty,
    else by itself. Returns the complete lines it printed."""
    out, err = work / f"child-{seed}.out", work / f"child-{seed}.err"
    with out.open("wb") as fo, err.open("wb") as fe:
        p = subprocess.Popen(
            [sys.executable, str(HELPER), *args, str(vault_dir), str(key), str(seed)],
            stdout=fo,
            stderr=fe,
            stdin=subprocess.DEVNULL,
        )
        try:
            if not args:
                time.sleep(delay)
                if p.poll() is not None:
                    pytest.fail(
                        f"the ingest loop (seed {seed}) exited by itself ({p.returncode}) "
                        f"before the kill:\n{err.read_text()}"
                    )
                p.send_signal(signal.SIGKILL)
            rc = p.wait(timeout=SELF_KILL_TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    if rc != -signal.SIGKILL:
        pytest.fail(
            f"the ingest loop (seed {seed}, {' '.join(args) or 'timed'}) ended with {rc}, "
            f"not SIGKILL:\n{err.read_text()}"
        )
    return _read_lines(out)


def _pending_recovery(vault_dir: Path) -> int:
    """Entries durable on the store but not covered by a checkpoint (what open rolls
    forward). Uses the real Ledger without a signer: nothing is written."""
    store = LocalStore(vault_dir / "store", _options().now)
    try:
        config = VaultConfig.from_bytes(store.get("vault.json"), "vault.json")
        _, _, pub = parse_vkey(config.public_key)
        ledger = Ledger(store, config.origin, pub, _options().now)
        return ledger.open(None)
    finally:
        store.close()


def _explain(report: Report) -> str:
    failed = [c.to_json() for c in report.checks if not c.ok]
    return json.dumps({"failed": failed, "stats": report.stats}, indent=1, default=str)


def _read_back(v: Vault, a: Acked) -> bytes:
    buf = io.BytesIO()
    v.read_record(a.record, buf, audit=False)
    return buf.getvalue()


@pytest.mark.slow
def test_sigkill_during_ingest_loses_nothing_acknowledged(cli: Cli, tmp_path: Path) -> None:
    vault_dir, key = cli.vault, cli.key_file
    work = tmp_path / "rounds"
    work.mkdir()
    rng = random.Random(20260301)
    plan = _plan(rng)
    acked: dict[str, Acked] = {}
    parsed: set[str] = set()  # objects already parsed completely (they never change)
    stats: Counter[str] = Counter()  # what the kills hit
    secs: dict[str, float] = dict.fromkeys(("in the child", "checking", "verifying"), 0.0)
    t0 = time.monotonic()
    for i, r in enumerate(plan):
        seed = 1000 + i
        where = f"round {i} (seed {seed}, {r.describe()})"
        t1 = time.monotonic()
        children = [(seed, _run_child(r.args, r.delay, vault_dir, key, seed, work))]
        if not any(e.get("event") == "opened" for e in children[0][1]):
            stats[f"killed before open completed ({r.how})"] += 1
        if r.then:
            pending = _pending_recovery(vault_dir)
            lines = _run_child(r.then, 0.0, vault_dir, key, seed + 10_000, work)
            if pending and not any(e.get("event") == "opened" for e in lines):
                stats["killed during crash recovery"] += 1
            children.append((seed + 10_000, lines))
        t2 = time.monotonic()
        secs["in the child"] += t2 - t1
        stats[f"kills:{r.how}"] += 1
        new: list[Acked] = []
        for child_seed, lines in children:
            for e in lines:
                if "event" in e:
                    continue
                a = Acked(str(e["record"]), str(e["sha256"]), child_seed, int(str(e["n"])))
                expect = hashlib.sha256(record_bytes(child_seed, a.n)).hexdigest()
                assert a.sha256 == expect, f"{where}: the child acknowledged wrong content: {a}"
                assert a.record not in acked, f"{where}: {a.record} acknowledged twice"
                new.append(a)
        stats["acknowledged"] += len(new)

        # the store as the crash left it: nothing torn is visible
        problems = check_store_objects(vault_dir / "store", key, parsed)
        assert not problems, f"{where}: torn or malformed objects:\n" + "\n".join(problems)
        pending = _pending_recovery(vault_dir)
        if pending:
            stats["rounds leaving entries to roll forward"] += 1

        with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
            assert v.ledger.checkpoint_size == v.ledger.size, f"{where}: not rolled forward"
            for a in [*acked.values(), *new]:
                rec = v.catalog.record(a.record)
                assert rec is not None, f"{where}: acknowledged record {a} is missing"
                assert rec["sha256"] == a.sha256, f"{where}: {a} has sha256 {rec['sha256']}"
            for a in new:
                data = _read_back(v, a)
                assert data == record_bytes(a.seed, a.n), f"{where}: {a} reads back different"
            t3 = time.monotonic()
            report = verify(v)
            secs["verifying"] += time.monotonic() - t3
            assert report.ok, f"{where}: verify failed after the crash:\n{_explain(report)}"
            orphans = sum("referenced by no entry" in n for c in report.checks for n in c.notes)
            stats["rounds with orphan packs"] += bool(orphans)
        assert not list((vault_dir / "store" / "tmp").iterdir()), "open left temp files"
        acked.update((a.record, a) for a in new)
        secs["checking"] += time.monotonic() - t2

    # at the end: everything acknowledged in any round, byte-exact; verify via the CLI too
    problems = check_store_objects(vault_dir / "store", key, parsed)
    assert not problems, "\n".join(problems)
    with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
        for a in acked.values():
            assert _read_back(v, a) == record_bytes(a.seed, a.n), f"{a} reads back different"
        stats["records in the vault"] = v.catalog.counts()["records"]
        assert stats["records in the vault"] >= len(acked)
    p = cli("verify", "--json")
    assert json.loads(p.stdout)["ok"] is True
    secs["total"] = time.monotonic() - t0
    print(
        f"crash loop: {dict(stats)}; {len(object_files(vault_dir / 'store'))} objects; "
        f"seconds: { {k: round(v, 1) for k, v in secs.items()} }"
    )
    assert stats["kills:timed"] >= 20
    assert stats["rounds leaving entries to roll forward"] >= 1, (
        "no kill left durable entries behind a checkpoint: recovery was not exercised"
    )
    assert stats["killed during crash recovery"] >= 1, "no kill landed in crash recovery"
    assert len(acked) > 1000, f"only {len(acked)} records were acknowledged in all rounds"


# --- kill during init ---------------------------------------------------------------------


def _create_child(
    vault_dir: Path,
    key: Path,
    *args: str,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HELPER), "--create", *args, str(vault_dir), str(key)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


class Problems:
    """Problems found after killed inits, grouped by message (the vault path elided)."""

    def __init__(self) -> None:
        self.by_message: dict[str, list[str]] = {}

    def add(self, label: str, vault_dir: Path, message: str) -> None:
        msg = message.replace(str(vault_dir), "<vault>")
        self.by_message.setdefault(msg, []).append(label)

    def __bool__(self) -> bool:
        return bool(self.by_message)

    def __str__(self) -> str:
        return "\n".join(
            f"- init killed {', '.join(labels)}:\n    {msg}"
            for msg, labels in self.by_message.items()
        )


def _after_killed_create(vault_dir: Path, key: Path, label: str, problems: Problems) -> str:
    """Check the state a killed ``init`` left; returns "none", "complete" or "bad"."""
    torn = check_store_objects(vault_dir / "store", key) if (vault_dir / "store").exists() else []
    for t in torn:
        problems.add(label, vault_dir, f"torn or malformed object: {t}")
    try:
        v = Vault.open(str(vault_dir), Secret(key_file=key), _options())
    except VaultNotFound:
        p = run_cli(vault_dir, key, "init", timeout=60)
        if p.returncode != 0:
            err = " | ".join(p.stderr.decode(errors="replace").strip().splitlines())
            problems.add(
                label,
                vault_dir,
                "open raises VaultNotFound, but 'strongroom init' "
                f"cannot be retried: exit {p.returncode}: {err}",
            )
            return "bad"
        with Vault.open(str(vault_dir), Secret(key_file=key), _options()) as v:
            report = verify(v)
            if not report.ok:
                problems.add(
                    label, vault_dir, f"init re-run, then verify failed: {_explain(report)}"
                )
        return "none"
    except StrongroomError as e:
        problems.add(
            label,
            vault_dir,
            f"neither no vault nor a complete one: open raised {type(e).__name__}: {e}",
        )
        return "bad"
    with v:
        first = decode_entry(v.ledger.entry(0)).type if v.ledger.size else None
        if first is not EntryType.VAULT_INIT:
            problems.add(
                label,
                vault_dir,
                "the vault opens, but it is not complete: its ledger "
                f"does not start with the vault.init entry (ledger size "
                f"{v.ledger.size}, first entry {first})",
            )
        report = verify(v)
        if not report.ok:
            problems.add(
                label, vault_dir, f"the vault opens but does not verify: {_explain(report)}"
            )
    return "complete"


@pytest.mark.slow
def test_sigkill_during_init_leaves_no_vault_or_a_complete_one(tmp_path: Path) -> None:
    key = tmp_path / "vault.key"
    key.write_text(new_key_file_text())
    problems = Problems()
    outcomes: Counter[str] = Counter()
    # deterministic: die just before the k-th fsync, for every k until init completes
    k = 1
    while True:
        d = tmp_path / f"fsync-{k}"
        p = _create_child(d, key, "--die-after-fsync", str(k))
        out, err = p.communicate(timeout=60)
        if p.returncode == 0:
            assert b'"created"' in out
            break
        assert p.returncode == -signal.SIGKILL, err.decode(errors="replace")
        outcomes[_after_killed_create(d, key, f"before fsync #{k}", problems)] += 1
        k += 1
        assert k < 500, "init never completed"
    # random moments (a kill may also land in the middle of a write)
    rng = random.Random(4242)
    for i in range(10):
        d = tmp_path / f"timed-{i}"
        p = _create_child(d, key)
        assert p.stdout is not None
        assert b'"ready"' in p.stdout.readline()
        delay = rng.uniform(0.0, 0.03)  # init itself takes a few tens of milliseconds
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        outcomes[_after_killed_create(d, key, f"{delay:.3f}s after start", problems)] += 1
    print(f"kill during init: {k - 1} fsync points, outcomes {dict(outcomes)}")
    assert not problems, f"after a killed init:\n{problems}"
    assert outcomes["none"] and outcomes["complete"]
