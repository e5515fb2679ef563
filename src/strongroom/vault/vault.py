"""The vault: ties the store, the ledger, the keys, the clock and the catalog together.

Opening a vault unlocks its keys, takes the writer lock, rolls the ledger forward
past any crash, and brings the catalog up to the ledger. Every action that changes
or reads the archive appends a ledger entry with the actor and the compliance time
(REQUIREMENTS.md F3-iii); :meth:`Vault.commit` makes queued entries durable and
signs a checkpoint. Record ingest lives in :mod:`strongroom.vault.ingest`, holds
and disposal in :mod:`strongroom.vault.lifecycle`, verification in
:mod:`strongroom.vault.verify`.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.catalog import Catalog
from strongroom.core.canonical import canonical_json, json_string
from strongroom.core.checkpoint import open_note, parse_vkey, vkey
from strongroom.core.entries import Entry, EntryType, RecordEncoder, decode_entry, encode_entry
from strongroom.core.retention import (
    ClockReading,
    format_time,
    parse_time,
)
from strongroom.crypto import (
    ChunkHasher,
    DataKey,
    KdfParams,
    Keyring,
    MasterKey,
    generate_signing_key,
    hmac_sha256,
    keyed_hmac,
    open_envelope,
    seal,
    unwrap_data_key,
    unwrap_signing_key,
    wrap_data_key,
    wrap_signing_key,
)
from strongroom.errors import (
    BadInput,
    ClockPaused,
    CorruptVault,
    NotFound,
    Refused,
    StrongroomError,
    VaultNotFound,
)
from strongroom.store import open_store
from strongroom.store.base import RetentionMode, Store
from strongroom.store.replicated import ReplicatedStore
from strongroom.vault.catalogproc import Batch, IndexerGone, IndexerProcess, batch_of
from strongroom.vault.clock import ComplianceClock
from strongroom.vault.config import CONFIG_NAME, VaultConfig, new_vault_id, write_atomic
from strongroom.vault.indexer import Indexer, Loader
from strongroom.vault.ledger import CHECKPOINT_PREFIX, Ledger
from strongroom.vault.options import (
    Options,
    Secret,
    local_root,
    state_dir_for,
    store_url,
    take_lock,
)

__all__ = ["Options", "Secret", "Vault", "data_key_prefix", "signing_key_name"]


def signing_key_name(vault_id: str) -> str:
    # under the vault id: a retried init (new id) never collides with a killed one's keys
    return f"keys/{vault_id}/signing"


def data_key_prefix(vault_id: str) -> str:
    return f"keys/{vault_id}/data/"


_INIT_LEFTOVERS = {"store", "state", "writer.lock"}
HORIZON_BLOCK = timedelta(days=365)


def _open_stores(url: str, opts: Options) -> Store:
    """The vault's store, paired with its replica when one is configured."""
    store = open_store(store_url(url), opts.now)
    if not opts.replica:
        return store
    try:
        replica = open_store(opts.replica, opts.now)
    except BaseException:
        store.close()
        raise
    return ReplicatedStore(store, replica, opts.replica_mode)


class Vault:
    """An open, unlocked vault holding the writer lock. Use as a context manager."""

    def __init__(
        self,
        url: str,
        store: Store,
        config: VaultConfig,
        master: MasterKey,
        keyring: Keyring,
        signer: Ed25519PrivateKey,
        state: Path,
        opts: Options,
        lock_fd: int,
    ) -> None:
        self.url = url
        self.store = store
        self.config = config
        self.master = master
        self.keyring = keyring
        self.signer = signer
        self.state = state
        self.opts = opts
        self._lock_fd = lock_fd
        self._ledger_io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self.hasher: ChunkHasher = master.chunk_hasher()
        self._source_key = keyed_hmac(master.derive(b"strongroom source-key v1"))
        self._query_key = master.derive(b"strongroom query-key v1")
        self.clk = ComplianceClock(state / "clock.json", opts.now)
        self._pending_entries: list[Entry] = []
        # retain-until of keys/config/ledger objects, known before anything is written
        # (a roll-forward on open writes ledger objects too)
        self._horizon: datetime | None = store.head(CONFIG_NAME).retain_until
        self._stale = False  # a commit failed: reload the ledger before the next write
        self._last_time: datetime | None = None
        self._time_text: tuple[datetime | None, str] = (None, "")  # the last one formatted
        _, _, pub = parse_vkey(config.public_key)
        self.ledger = Ledger(store, config.origin, pub, self.ledger_retain_until)
        if opts.fresh_catalog:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{state / 'catalog.sqlite'}{suffix}").unlink(missing_ok=True)
        self.catalog = Catalog(state / "catalog.sqlite")
        self.loader = Loader(self)
        self.indexer = Indexer(self.catalog, self.loader)
        self._indexer_proc: IndexerProcess | None = None
        # facts read from the catalog, kept while only the indexer process writes it (its
        # batches change neither): a read would wait for it to catch up
        self._query_holds: bool | None = None
        self._mode: RetentionMode | None = None

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        url: str,
        secret: Secret,
        opts: Options | None = None,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
    ) -> Vault:
        opts = opts or Options()
        state = state_dir_for(url, opts.state_dir)
        root = local_root(url)
        if root is not None and root.exists() and any(root.iterdir()):
            if (root / "store" / "objects" / CONFIG_NAME).exists():
                raise Refused(f"{url} already holds a vault", "Use it, or pick an empty path.")
            if not {p.name for p in root.iterdir()} <= _INIT_LEFTOVERS:
                raise BadInput(
                    f"{url} is not empty and is not a vault",
                    "Create the vault in a new or empty directory.",
                )
            # what is there was left by an init that was interrupted before vault.json
            # existed: no vault was ever created; its orphan key objects stay (retained)
        store = _open_stores(url, opts)
        if store.exists(CONFIG_NAME):
            raise Refused(f"{url} already holds a vault", "Use it, or pick an empty location.")
        kdf = None
        if secret.key_file is None:
            if not secret.passphrase:
                raise BadInput(
                    "no passphrase given for the new vault",
                    "Set STRONGROOM_PASSPHRASE or pass --key-file.",
                )
            kdf = KdfParams.new("test" if opts.kdf_strength == "test" else "interactive")
        master = secret.master_key(kdf)
        signer = generate_signing_key()
        vault_id = new_vault_id()
        origin = f"strongroom.vault/{vault_id}"
        now = opts.now()
        config = VaultConfig(
            vault_id=vault_id,
            origin=origin,
            created=now,
            kdf=kdf,
            check=master.check_value(),
            public_key=vkey(origin, signer.public_key()),
            mode=mode,
        )
        until = opts.policy.longest(now)
        data_key = DataKey.generate("dk-0001")
        # keys first, config last: a vault is only a vault once vault.json exists
        store.put(signing_key_name(vault_id), wrap_signing_key(master, signer), retain_until=until)
        store.put(
            data_key_prefix(vault_id) + data_key.key_id,
            wrap_data_key(master, data_key),
            retain_until=until,
        )
        store.put(CONFIG_NAME, config.to_bytes(), retain_until=until)
        # _unlocked finishes init: it writes the vault.init entry into the empty ledger
        return cls._unlocked(url, store, config, master, opts, state)

    def _finish_init(self) -> None:
        """Write the ledger's first entry. Runs at create, and on the first open after an
        init that was killed between storing vault.json and committing this entry."""
        self.append_entry(
            EntryType.VAULT_INIT,
            {
                "vault": self.config.vault_id,
                "origin": self.config.origin,
                "public_key": self.config.public_key,
                "mode": str(self.config.mode),
                "policy": self.opts.policy.to_json(),
            },
        )
        self.commit()

    @classmethod
    def open(cls, url: str, secret: Secret, opts: Options | None = None) -> Vault:
        opts = opts or Options()
        root = local_root(url)
        # (with a replica, a primary that lost vault.json still opens: verify reports it
        # and repair restores it)
        if (
            root is not None
            and not opts.replica
            and not (root / "store" / "objects" / CONFIG_NAME).exists()
        ):
            if root.exists() and not root.is_dir():
                raise VaultNotFound(f"{url} is not a directory")
            raise VaultNotFound(f"no vault at {url}")
        store = _open_stores(url, opts)
        try:
            raw = store.get(CONFIG_NAME)
        except NotFound as e:
            raise VaultNotFound(f"no vault at {url}") from e
        config = VaultConfig.from_bytes(raw, f"{url}: {CONFIG_NAME}")
        master = secret.master_key(config.kdf)
        master.verify_check_value(config.check)
        return cls._unlocked(url, store, config, master, opts, state_dir_for(url, opts.state_dir))

    @classmethod
    def _unlocked(
        cls,
        url: str,
        store: Store,
        config: VaultConfig,
        master: MasterKey,
        opts: Options,
        state: Path,
    ) -> Vault:
        try:
            signer = unwrap_signing_key(master, store.get(signing_key_name(config.vault_id)))
        except NotFound as e:
            raise CorruptVault(f"{url}: the signing key object is missing") from e
        if vkey(config.origin, signer.public_key()) != config.public_key:
            raise CorruptVault(f"{url}: the signing key does not match vault.json")
        keyring = Keyring()
        for name in store.list(data_key_prefix(config.vault_id)):
            key = unwrap_data_key(master, store.get(name))
            if name.rsplit("/", 1)[-1] != key.key_id:
                raise CorruptVault(f"{url}: key object {name} holds key {key.key_id}")
            keyring.add(key)
        if not len(keyring):
            raise CorruptVault(f"{url}: no data keys found")
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        # one writer per vault, whatever --state-dir each process uses
        root = local_root(url)
        lock_fd = take_lock((root if root is not None else state) / "writer.lock")
        try:
            vault = cls(url, store, config, master, keyring, signer, state, opts, lock_fd)
            vault._recover()
        except BaseException:
            os.close(lock_fd)
            raise
        return vault

    def _recover(self) -> None:
        self.ledger.open(self.signer)
        self._check_witness()
        if self.ledger.size:
            last = decode_entry(self.ledger.entry(self.ledger.size - 1))
            self._last_time = last.time
            self.clk.floor(last.time)
        if self.ledger.damaged is None:
            self.catch_up()
            if self.ledger.size == 0:
                self._finish_init()

    def _check_witness(self) -> None:
        """Compare the ledger with the last checkpoint this host saw (rollback detection).

        A store restored from an older copy is self-consistent; the checkpoint kept in the
        local state directory is not rolled back with it. On a mismatch the vault opens
        read-only for ``verify``: every write is refused.
        """
        witness = self.state / "checkpoint"
        if self.ledger.damaged is not None or not witness.exists():
            return
        try:
            cp = open_note(
                witness.read_bytes(),
                [(self.config.origin, self.ledger.public_key)],
                origin=self.config.origin,
            )
            same = cp.size <= self.ledger.size and self.ledger.root(cp.size) == cp.root
        except (StrongroomError, ValueError) as e:
            self.ledger.damaged = f"the last checkpoint this host saw ({witness}) is unusable: {e}"
            return
        if not same:
            self.ledger.damaged = (
                f"rollback or fork: this host last saw a checkpoint of {cp.size} entries that "
                f"the ledger ({self.ledger.size} entries) does not extend"
            )

    def catch_up(self) -> int:
        """Apply ledger entries the catalog has not seen yet (after a crash or reindex)."""
        start = self.catalog.indexed
        if start > self.ledger.size:
            self.ledger.damaged = (
                f"the catalog has indexed {start} entries but the ledger holds only "
                f"{self.ledger.size}: the ledger was truncated or rolled back"
            )
            return 0
        if start == self.ledger.size:
            return 0
        self.indexer.apply_all(
            (serial, decode_entry(data)) for serial, data in self.ledger.entries(start)
        )
        return self.ledger.size - start

    def close(self) -> None:
        """Commit what is queued, then release everything — also when that fails (the
        error, e.g. a full disk, is raised after the writer lock is released)."""
        try:
            if self.ledger.pending:
                self.commit()
            elif self._indexer_proc is not None and self._indexer_proc.busy:
                self.settle_catalog()
        finally:
            try:
                self.catalog.close()  # raises a failed background commit's error
            finally:
                try:
                    if self._indexer_proc is not None:
                        self._indexer_proc.close()
                    self._ledger_io.shutdown()
                    self.store.close()
                finally:
                    if self._lock_fd >= 0:
                        os.close(self._lock_fd)
                        self._lock_fd = -1

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.discard_pending()
        self.close()

    # --- time and retention -------------------------------------------------------------

    def clock(self) -> ClockReading:
        """A full reading of the compliance clock; a jump or a step back is recorded."""
        reading, event = self.clk.read()
        if event is not None:
            self.append_entry(EntryType.CLOCK, event, stamp=reading.trusted)
        return reading

    def times(self) -> tuple[datetime, datetime]:
        """(stamp, start): ``stamp`` times an event — the trusted compliance time, never
        before the last entry, and never past an unconfirmed jump, so a clock that ran
        ahead leaves no future times in the ledger; ``start`` begins a retention period —
        the later of system time and high-water mark, so no period is computed short."""
        fast = self.clk.fast()
        if fast is not None:
            stamp = sys_now = fast
        else:
            reading = self.clock()
            stamp, sys_now = reading.trusted, reading.now
        if self._last_time is not None and stamp < self._last_time:
            stamp = self._last_time
        return stamp, max(sys_now, stamp)

    def now(self) -> datetime:
        """The time to stamp an event with (see :meth:`times`)."""
        return self.times()[0]

    def confirm_clock(self, reason: str) -> datetime:
        """Accept the system time after a forward jump; recorded with the actor and reason."""
        old, new = self.clk.confirm()
        self.append_entry(
            EntryType.CLOCK,
            {
                "event": "jump-confirmed",
                "high_water": format_time(old),
                "confirmed": format_time(new),
                "sealed": self.seal_details({"reason": reason}, b"clock"),
            },
            stamp=new,
        )
        return new

    def trusted_now(self) -> datetime:
        """The time disposal may rely on; raises ClockPaused after an unconfirmed jump."""
        reading = self.clock()
        if reading.paused:
            self.commit()
            pj = reading.state.pending_jump
            raise ClockPaused(
                f"the system clock jumped forward from {format_time(reading.trusted)} to "
                f"{format_time(pj) if pj else '?'}; disposal is paused"
            )
        return reading.trusted

    def ledger_retain_until(self) -> datetime:
        """Ledger objects are kept as long as the longest policy period from now."""
        t = self.clk.high_water or self.opts.now()
        longest = self.opts.policy.longest(max(t, self.opts.now()))
        return max(longest, self._horizon) if self._horizon is not None else longest

    @property
    def mode(self) -> RetentionMode:
        if self._mode is None:
            self._mode = RetentionMode(self.catalog.get_meta("mode") or self.config.mode)
        return self._mode

    # --- ledger -------------------------------------------------------------------------

    def append_entry(
        self,
        type_: EntryType,
        fields: Mapping[str, Any],
        stamp: datetime | None = None,
        *,
        checked: bool = True,
        encoder: RecordEncoder | None = None,
    ) -> int:
        if self._stale:
            self._reload_ledger()
        t = stamp if stamp is not None else self.now()
        if self._last_time is not None and t < self._last_time:
            t = self._last_time
        self._last_time = t
        try:
            if encoder is not None:
                if t != self._time_text[0]:
                    self._time_text = (t, format_time(t))
                data = encoder.encode(self._time_text[1], fields)
            else:
                data = encode_entry(type_, t, self.opts.actor, fields, checked=checked)
        except ValueError as e:
            raise BadInput(f"cannot record {type_}: {e}") from e
        serial = self.ledger.add(data)
        # the live indexer applies these directly instead of decoding the bytes again;
        # fields given with an encoder (the Appender's, built for this entry and never
        # changed afterwards) are kept as they are, others are copied
        kept = fields if encoder is not None else MappingProxyType(dict(fields))
        self._pending_entries.append(Entry(type_, t, self.opts.actor, kept))
        return serial

    def discard_pending(self) -> None:
        self.ledger.discard_pending()
        self._pending_entries.clear()
        self.loader.forget()

    def commit(self, *, background: bool = False) -> bytes | None:
        """Make queued entries durable, sign a checkpoint, index them. Group commit.

        ``background`` lets the catalog finish its bulk inserts on its helper thread
        (the entries are durable either way; the catalog is derived from them)."""
        if not self.ledger.pending:
            return None
        if self.clk.dirty:
            self.clk.save()
        self._keep_infrastructure(self._pending_entries)
        start = self.ledger.size
        # what may raise an earlier batch's failure comes before the entries are taken,
        # so that they stay queued for the next commit
        proc = self._indexer_proc
        if proc is not None and proc.busy:
            with contextlib.suppress(IndexerGone):  # it has ended: caught up just below
                proc.make_room()  # raises an earlier batch's failure
        batch = self._batch_for_indexer(start, self._pending_entries) if background else None
        busy = proc is not None and proc.busy
        if batch is None:  # holds and the mode may change in any other commit
            self._query_holds = self._mode = None
            self.settle_catalog()
        elif not busy and self.catalog.indexed < start:
            # (while busy, the indexer process was sent every entry before ``start``, and
            # it checks that it has indexed them all before it applies a batch)
            self.catch_up()
        pending, self._pending_entries = self._pending_entries, []
        rows = None
        recover = False  # the process ended as the batch was sent: index from the ledger
        try:
            if background:
                # the ledger's writes (mostly fsyncs) run beside the indexing — sending the
                # batch to the indexer process, or staging its rows here; the catalog
                # commits only once the ledger has
                job = self._ledger_io.submit(self.ledger.commit, self.signer)
                try:
                    if batch is not None:
                        assert proc is not None
                        try:
                            proc.begin(batch)
                        except IndexerGone:
                            batch, recover = None, True
                    else:
                        rows = self.indexer.stage((start + i, e) for i, e in enumerate(pending))
                finally:
                    note = job.result()
            else:
                note = self.ledger.commit(self.signer)
        except BaseException:
            if rows is not None:
                self.indexer.cancel()
            if batch is not None:
                self._drop_batch()
            self._stale = True
            with contextlib.suppress(StrongroomError, OSError):
                self._reload_ledger()
            raise
        if note is not None:
            try:
                write_atomic(self.state / "checkpoint", note)
            except BaseException:
                if rows is not None:  # the ledger holds the entries: catch_up indexes them
                    self.indexer.cancel()
                if batch is not None:
                    self._drop_batch()
                raise
        if batch is not None:
            assert proc is not None
            try:
                self.catalog.defer(proc.finish(durable=True), supersedes=busy)
            except IndexerGone:
                recover = True
        if recover:
            # whatever the process had committed stays; the rest comes from the ledger,
            # which now holds this batch too (no ledger write runs any more)
            self.settle_catalog()
        elif rows is not None:
            self.indexer.finish(rows, background=True)
        elif batch is None:
            self.indexer.apply_all((start + i, e) for i, e in enumerate(pending))
        self.loader.forget()
        return note

    def start_indexer_process(self) -> None:
        """Have later background commits indexed by a process of its own (a long ingest
        calls this; see :mod:`strongroom.vault.catalogproc`). Without it, or when it
        cannot start, they are indexed by a helper thread as before."""
        if self._indexer_proc is None and self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                self._indexer_proc = IndexerProcess(self.catalog.path, self._lock_fd)

    def settle_catalog(self) -> None:
        """Have the catalog apply every committed entry: wait for the indexer process,
        and catch up from the ledger what it did not commit if it has ended. Not while
        a ledger write runs (the ledger is read)."""
        with contextlib.suppress(IndexerGone):
            self.catalog.wait()
        if self.catalog.indexed < self.ledger.size:
            self.catch_up()

    def _drop_batch(self) -> None:
        """Roll back what the indexer process staged (the commit failed); what it says
        does not matter now — if it has ended, the next commit indexes in process."""
        assert self._indexer_proc is not None
        with contextlib.suppress(StrongroomError):
            self._indexer_proc.finish(durable=False).result()

    def _batch_for_indexer(self, start: int, pending: list[Entry]) -> Batch | None:
        """What to send the indexer process for these entries, if it can index them all
        from what is in hand. Not while a query hold is active: the records it catches
        are held before the commit returns (see ``Appender.commit``)."""
        proc = self._indexer_proc
        if proc is None or not proc.alive:
            return None
        if self._query_holds is None:
            self._query_holds = self.catalog.has_query_holds()
        if self._query_holds:
            return None
        return batch_of(start, pending, self.loader)

    def _reload_ledger(self) -> None:
        """After a failed commit (full disk, I/O error) some of its bundles may be durable:
        the in-memory ledger is rebuilt from the store, rolling forward what was written,
        so no serial is ever written twice with different entries. Until that succeeds
        (e.g. once space is freed) every write first retries it."""
        self.loader.forget()
        self._pending_entries.clear()
        ledger = Ledger(
            self.store, self.config.origin, self.ledger.public_key, self.ledger_retain_until
        )
        ledger.open(self.signer)
        self.ledger = ledger
        self.catch_up()
        self._stale = False

    def infrastructure_objects(self) -> Iterator[str]:
        """This vault's keys, every ledger object and vault.json (not packs, and not keys
        left behind by an interrupted init under another vault id). vault.json comes last:
        its retain-until is read as the horizon, so it may only move once all the others
        have (a pass cut short by a full disk is simply run again)."""
        yield from self.store.list(f"keys/{self.config.vault_id}/")
        yield from self.store.list("tile/")
        yield from self.store.list(CHECKPOINT_PREFIX)
        yield CONFIG_NAME

    def _keep_infrastructure(self, pending: list[Entry]) -> None:
        """Keep keys, vault.json and every ledger object retained as long as the records
        that depend on them (REQUIREMENTS.md F3-iii: the audit trail lives as long as what
        it audits). Extended in blocks — to the longest policy period from now, when less
        than half of it is left, or to the latest record retention if that is later — so
        the pass over all ledger objects runs rarely (Veeam's "block" idea)."""
        kinds = (EntryType.RECORD_APPEND, EntryType.RECORD_EXTEND)
        untils = {e.fields["retain_until"] for e in pending if e.type in kinds}  # few distinct
        needed = max((parse_time(u) for u in untils), default=None)
        if self._horizon is None:
            self._horizon = self.store.head(CONFIG_NAME).retain_until
        horizon = self._horizon
        now = self.opts.now()
        longest = self.opts.policy.longest(now)
        half = now + (longest - now) / 2
        if horizon >= half and (needed is None or horizon >= needed):
            return
        # one block past what is needed, so the pass runs about once a BLOCK, not per commit
        target = (max(longest, needed) if needed is not None else longest) + HORIZON_BLOCK
        count = 0
        for name in self.infrastructure_objects():
            if self.store.head(name).retain_until < target:
                self.store.extend_retention(name, target)
                count += 1
        self._horizon = target
        self.append_entry(
            EntryType.LEDGER_EXTEND,
            {"retain_until": format_time(target), "objects": count},
            stamp=self._last_time or now,
        )

    def audit(self, action: str, **fields: Any) -> None:
        """Record an access (get, search, proof, export ...) and commit it."""
        self.append_entry(EntryType.ACCESS, {"action": action, **fields})
        self.commit()

    def deny(self, action: str, target: str, why: str) -> None:
        """Record a refused attempt before raising :class:`Refused` (F2-i-B-3)."""
        self.append_entry(EntryType.DENIED, {"action": action, "target": target, "why": why})
        self.commit()

    def entries(self, start: int = 0) -> Iterator[tuple[int, Entry]]:
        for serial, data in self.ledger.entries(start):
            yield serial, decode_entry(data)

    # --- sealed details -----------------------------------------------------------------

    def seal_details(self, details: Mapping[str, Any], context: bytes) -> str:
        env = seal(
            self.keyring.current,
            canonical_json(dict(details), checked=False),  # str fields built by our code
            kind="entry",
            context=context,
        )
        return base64.b64encode(env).decode()

    def seal_record_details(self, source: str, source_id: str, filename: str, record: str) -> str:
        """:meth:`seal_details` of a record's source, source id and file name (the
        append hot path: the canonical JSON of these three strings, built directly)."""
        plain = (
            f'{{"filename":{json_string(filename)},"source":{json_string(source)},'
            f'"source_id":{json_string(source_id)}}}'
        )
        env = seal(self.keyring.current, plain.encode(), kind="entry", context=record.encode())
        return base64.b64encode(env).decode()

    def open_details(self, sealed: str, context: bytes) -> dict[str, Any]:
        plain = open_envelope(self.keyring, base64.b64decode(sealed), kind="entry", context=context)
        obj = json.loads(plain)
        if not isinstance(obj, dict):
            raise CorruptVault("sealed entry details are not a JSON object")
        return obj

    def query_key(self, query: Mapping[str, Any]) -> str:
        """A keyed hash of a search, for the audit trail: equal searches can be matched up
        by key holders, but a short query (a name) cannot be guessed from the ledger."""
        return hmac.digest(self._query_key, canonical_json(dict(query)), "sha256").hex()

    def source_key(self, source: str, source_id: str) -> str:
        msg = source.encode() + b"\0" + source_id.encode()
        return hmac_sha256(self._source_key, msg).hex()

    # --- keys and mode ------------------------------------------------------------------

    def rotate_key(self) -> str:
        key = DataKey.generate(self.keyring.next_key_id())
        self.store.put(
            data_key_prefix(self.config.vault_id) + key.key_id,
            wrap_data_key(self.master, key),
            retain_until=self.ledger_retain_until(),
        )
        self.keyring.add(key)
        self.append_entry(EntryType.KEY_ROTATE, {"key_id": key.key_id})
        self.commit()
        return key.key_id

    def public_key(self) -> str:
        return self.config.public_key

    def set_mode(self, mode: RetentionMode) -> None:
        if self.mode == RetentionMode.COMPLIANCE and mode != RetentionMode.COMPLIANCE:
            self.deny("mode.set", str(mode), "compliance mode cannot be turned off")
            raise Refused(
                "compliance mode cannot be turned off once on",
                "Nothing was changed; the attempt was recorded in the ledger.",
            )
        if mode == self.mode:
            return
        self.append_entry(EntryType.MODE_SET, {"mode": str(mode)})
        self.commit()

    # --- reading records ----------------------------------------------------------------

    def record(self, record_id: str) -> dict[str, Any]:
        rec = self.catalog.record(record_id)
        if rec is None:
            raise NotFound(f"no record {record_id!r} in this vault")
        return rec

    def read_record(self, record_id: str, out: BinaryIO, *, audit: bool = True) -> dict[str, Any]:
        """Write a record's raw original to ``out``, checking every chunk and the total hash."""
        rec = self.record(record_id)
        if rec["disposed_serial"] is not None:
            raise NotFound(
                f"record {record_id} was disposed of at serial {rec['disposed_serial']}",
                "Its disposition entry is in the ledger; the content no longer exists.",
            )
        if audit:
            self.audit("get", record=record_id)  # recorded before anything is delivered
        self.loader.write_content(rec, out)
        return rec
