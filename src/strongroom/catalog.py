"""The catalog: a SQLite (WAL, FTS5) index derived from the ledger and the store.

Nothing here is authoritative. Every row is produced by applying ledger entries in
serial order (:class:`strongroom.vault.indexer.Indexer`), whether live during an
append or from scratch by ``reindex``; both paths run the same code, so a rebuild
equals the original (``tests/test_reindex.py`` compares :meth:`Catalog.dump`).

The full-text table stores the indexed text (FTS5 with content): the catalog lives
on the vault host, in a directory only the service user can read (0700).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from strongroom.errors import BadInput, CorruptVault, DiskFull, StorageError, StrongroomError

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records(
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    serial INTEGER NOT NULL UNIQUE,
    class TEXT NOT NULL,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    source_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    received TEXT NOT NULL,
    retain_until TEXT NOT NULL,
    rule TEXT NOT NULL,
    filename TEXT NOT NULL,
    flags TEXT NOT NULL,
    actor TEXT NOT NULL,
    disposed_serial INTEGER
);
CREATE INDEX IF NOT EXISTS records_dedup ON records(source_key, sha256);
CREATE INDEX IF NOT EXISTS records_retain ON records(retain_until);
CREATE TABLE IF NOT EXISTS participants(
    record_id TEXT NOT NULL, role TEXT NOT NULL, address TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS participants_record ON participants(record_id);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    body, subject, participants, tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS packs(
    name TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    retain_until TEXT NOT NULL,
    legal_hold INTEGER NOT NULL DEFAULT 0,
    put_serial INTEGER NOT NULL,
    deleted_serial INTEGER
);
CREATE TABLE IF NOT EXISTS record_packs(
    record_id TEXT NOT NULL, pack TEXT NOT NULL, PRIMARY KEY(record_id, pack)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_packs_pack ON record_packs(pack);
CREATE TABLE IF NOT EXISTS chunks(
    id BLOB PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL,
    length INTEGER NOT NULL, plain_len INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds(
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    query TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    placed TEXT NOT NULL,
    placed_serial INTEGER NOT NULL,
    released_serial INTEGER
);
CREATE TABLE IF NOT EXISTS hold_records(
    hold_id TEXT NOT NULL, record_id TEXT NOT NULL, PRIMARY KEY(hold_id, record_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hold_records_record ON hold_records(record_id);
"""

# Chunks smaller than this are not looked up for deduplication (a lookup per chat
# message costs more than the few hundred bytes it could save), so the chunks table
# holds only chunks of at least this size: CHUNK_SQL is asked about no others.
DEDUP_MIN = 4096
CHUNK_SQL = (
    "SELECT c.pack, c.offset, c.length, c.plain_len FROM chunks c JOIN packs p"
    " ON p.name = c.pack WHERE c.id=? AND p.deleted_serial IS NULL"
)

_DUMP_TABLES = (
    ("meta", "key"),
    ("records", "serial"),
    ("participants", "record_id, role, address"),
    ("packs", "name"),
    ("record_packs", "record_id, pack"),
    ("chunks", "id"),
    ("holds", "id"),
    ("hold_records", "hold_id, record_id"),
)


@dataclass(frozen=True, slots=True)
class Query:
    """A catalog search: FTS5 text plus exact filters. Also the scope of a query hold."""

    text: str = ""
    record_class: str = ""
    source: str = ""

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "class": self.record_class, "source": self.source}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Query:
        return Query(str(d.get("text", "")), str(d.get("class", "")), str(d.get("source", "")))

    def where(self) -> tuple[str, list[Any]]:
        clauses, args = ["r.disposed_serial IS NULL"], []
        if self.text:
            clauses.append("r.rowid IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
            args.append(self.text)
        if self.record_class:
            clauses.append("r.class GLOB ?")
            args.append(self.record_class)
        if self.source:
            clauses.append("r.source GLOB ?")
            args.append(self.source)
        return " AND ".join(clauses), args


class Pending(Protocol):
    """A background commit: :meth:`result` waits for it and raises its error."""

    def result(self) -> None: ...


class Catalog:
    """The catalog database. One writer connection, reached through :attr:`db`.

    A transaction can be finished in the background (:meth:`commit`): the bulk
    inserts of a batch and its COMMIT run on a helper thread — SQLite releases the GIL,
    so the next batch is prepared meanwhile — and the next use of :attr:`db` waits for
    it (and raises its error, the transaction rolled back). Nothing can observe the
    connection in between: every access goes through :attr:`db`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: Pending | None = None
        self._pool: ThreadPoolExecutor | None = None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=OFF")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise CorruptVault(
                f"catalog {path} is unreadable: {e}",
                "The catalog is derived data: 'strongroom reindex' rebuilds it.",
            ) from e
        v = self.get_meta("schema")
        if v is None:
            self.set_meta("schema", str(SCHEMA_VERSION))
        elif v != str(SCHEMA_VERSION):
            raise CorruptVault(
                f"catalog {path} has schema {v}; expected {SCHEMA_VERSION}",
                "Run 'strongroom reindex' to rebuild it.",
            )

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, once any background commit has finished."""
        if self._pending is not None:
            self.wait()
        return self._db

    def wait(self) -> None:
        """Wait for a background commit; its error (if any) is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
            self._db.close()

    def _failed(self, e: sqlite3.OperationalError) -> StrongroomError:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if "full" in str(e):
            return DiskFull(
                f"no space left on the device (disk full) while updating the catalog {self.path}"
            )
        return StorageError(f"catalog {self.path}: {e}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.OperationalError as e:
            raise self._failed(e) from e

    def begin(self) -> sqlite3.Connection:
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise self._failed(e) from e
        return db

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def commit(self, work: Callable[[sqlite3.Connection], None], *, background: bool) -> None:
        """Run ``work`` and COMMIT the transaction :meth:`begin` opened (rolled back on
        error) — with ``background``, on the helper thread, and the next use of
        :attr:`db` waits for it."""
        db = self.db

        def finish() -> None:
            try:
                work(db)
                db.execute("COMMIT")
            except sqlite3.OperationalError as e:
                raise self._failed(e) from e
            except BaseException:
                self.rollback()
                raise

        if not background:
            finish()
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog")
        self._pending = self._pool.submit(finish)

    def defer(self, pending: Pending, *, supersedes: bool = False) -> None:
        """Hand the catalog to a commit finished elsewhere (the indexer process, see
        :mod:`strongroom.vault.catalogproc`): the next use of :attr:`db` waits for it.
        ``supersedes``: waiting for ``pending`` also waits for the one it replaces."""
        if not supersedes:
            self.wait()
        self._pending = pending

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    @property
    def indexed(self) -> int:
        """Number of ledger entries applied (the next serial to apply)."""
        return int(self.get_meta("indexed") or 0)

    # --- queries ------------------------------------------------------------------------

    def record(self, record_id: str) -> dict[str, Any] | None:
        cur = self.db.execute("SELECT * FROM records WHERE id=?", (record_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def find_duplicate(self, source_key: str, sha256: str) -> str | None:
        row = self.db.execute(
            "SELECT id FROM records WHERE source_key=? AND sha256=? AND disposed_serial IS NULL"
            " ORDER BY serial LIMIT 1",
            (source_key, sha256),
        ).fetchone()
        return None if row is None else str(row[0])

    def pack(self, name: str) -> dict[str, Any] | None:
        cur = self.db.execute("SELECT * FROM packs WHERE name=?", (name,))
        row = cur.fetchone()
        return None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))

    def search(self, q: Query, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        where, args = q.where()
        order = "r.serial"
        sql = (
            "SELECT r.id, r.class, r.source, r.received, r.size, r.filename, r.flags, r.serial"
            f" FROM records r WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
        )
        try:
            cur = self.db.execute(sql, [*args, limit, offset])
        except sqlite3.OperationalError as e:
            raise BadInput(
                f"invalid search query {q.text!r}: {e}",
                'Use FTS5 syntax: words, "phrases", AND/OR/NOT, prefix*.',
            ) from e
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def matches(self, q: Query, record_id: str) -> bool:
        where, args = q.where()
        row = self.db.execute(
            f"SELECT 1 FROM records r WHERE r.id = ? AND {where}", [record_id, *args]
        ).fetchone()
        return row is not None

    def record_ids(self, q: Query) -> list[str]:
        where, args = q.where()
        return [
            str(r[0])
            for r in self.db.execute(
                f"SELECT r.id FROM records r WHERE {where} ORDER BY r.serial", args
            )
        ]

    def holds(self, active_only: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM holds"
        if active_only:
            sql += " WHERE released_serial IS NULL"
        cur = self.db.execute(sql + " ORDER BY placed_serial")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def has_query_holds(self) -> bool:
        """Whether an active hold catches records by query (new ones included)."""
        row = self.db.execute(
            "SELECT 1 FROM holds WHERE kind = 'query' AND released_serial IS NULL LIMIT 1"
        ).fetchone()
        return row is not None

    def held(self, record_id: str) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute(
                "SELECT h.id FROM hold_records hr JOIN holds h ON h.id = hr.hold_id"
                " WHERE hr.record_id = ? AND h.released_serial IS NULL ORDER BY h.id",
                (record_id,),
            )
        ]

    def packs_of(self, record_id: str) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute(
                "SELECT pack FROM record_packs WHERE record_id=? ORDER BY pack", (record_id,)
            )
        ]

    def records_in_pack(self, pack: str) -> list[str]:
        return [
            str(r[0])
            for r in self.db.execute(
                "SELECT record_id FROM record_packs WHERE pack=? ORDER BY record_id", (pack,)
            )
        ]

    def pack_needs_hold(self, pack: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM record_packs rp JOIN hold_records hr ON hr.record_id = rp.record_id"
            " JOIN holds h ON h.id = hr.hold_id JOIN records r ON r.id = rp.record_id"
            " WHERE rp.pack = ? AND h.released_serial IS NULL AND r.disposed_serial IS NULL"
            " LIMIT 1",
            (pack,),
        ).fetchone()
        return row is not None

    def expired_records(self, now_iso: str) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT * FROM records WHERE disposed_serial IS NULL AND retain_until <= ?"
            " ORDER BY serial",
            (now_iso,),
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def live_packs(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM packs WHERE deleted_serial IS NULL ORDER BY name")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def all_records(self) -> Iterator[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM records ORDER BY serial")
        cols = [d[0] for d in cur.description]
        for row in cur:
            yield dict(zip(cols, row, strict=True))

    def counts(self) -> dict[str, int]:
        def one(sql: str) -> int:
            return int(self.db.execute(sql).fetchone()[0])

        return {
            "records": one("SELECT count(*) FROM records WHERE disposed_serial IS NULL"),
            "disposed": one("SELECT count(*) FROM records WHERE disposed_serial IS NOT NULL"),
            "packs": one("SELECT count(*) FROM packs WHERE deleted_serial IS NULL"),
            "holds": one("SELECT count(*) FROM holds WHERE released_serial IS NULL"),
            "bytes": one(
                "SELECT coalesce(sum(size), 0) FROM records WHERE disposed_serial IS NULL"
            ),
        }

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table in a stable order (for rebuild-equality checks)."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table, order in _DUMP_TABLES:
            out[table] = [
                tuple(r) for r in self.db.execute(f"SELECT * FROM {table} ORDER BY {order}")
            ]
        out["fts"] = [
            tuple(r)
            for r in self.db.execute(
                "SELECT rowid, body, subject, participants FROM fts ORDER BY rowid"
            )
        ]
        return out
