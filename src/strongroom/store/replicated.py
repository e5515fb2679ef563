"""Two stores kept as copies of each other: a primary and a replica (F2-v: a duplicate
copy, stored separately).

Every write goes to both. In ``sync`` mode (the default) a write returns — and so an
append is acknowledged — only when **both** copies are durable; in ``async`` mode the
replica's copy is written in the background (the append waits for the primary only),
and :meth:`ReplicatedStore.flush` / ``close`` wait for it; a copy lost in a crash is
found by ``verify`` and restored by ``repair``.

Reads come from the primary; an object the primary has lost is read from the replica
(so the vault keeps working), and ``verify`` reports the loss. Neither side is ever
overwritten: ``repair`` (:mod:`strongroom.vault.repair`) restores a missing or damaged
copy by *creating* it from the healthy side.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from strongroom.errors import NotFound, StorageError
from strongroom.store.base import ObjectInfo, RetentionMode, Store

MODES = ("sync", "async")
ASYNC_IN_FLIGHT = 4  # async: replica writes outstanding at once (each may hold a pack)


class ReplicatedStore:
    def __init__(self, primary: Store, replica: Store, mode: str = "sync") -> None:
        if mode not in MODES:
            raise ValueError(f"replication mode must be one of {MODES}, not {mode!r}")
        self.primary = primary
        self.replica = replica
        self.mode = mode
        self.url = f"{primary.url} (replica {replica.url}, {mode})"
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="replica")
        self._pending: list[Future[object]] = []
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"ReplicatedStore({self.primary!r}, {self.replica!r}, {self.mode!r})"

    def sides(self) -> list[Store]:
        return [self.primary, self.replica]

    # --- writes: both sides -------------------------------------------------------------

    def _both(self, replica: Future[object]) -> None:
        if self.mode == "async":
            with self._mutex:
                self._pending.append(replica)
                done = [f for f in self._pending if f.done() and f.exception() is None]
                for f in done:
                    self._pending.remove(f)
                oldest = self._pending[0] if len(self._pending) > ASYNC_IN_FLIGHT else None
            if oldest is not None:
                oldest.exception()  # a slow replica holds back the writer, not memory
            return
        replica.result()  # raises the replica's error: nothing is acknowledged then

    def put(
        self,
        name: str,
        data: bytes | bytearray,
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
        legal_hold: bool = False,
    ) -> ObjectInfo:
        rep: Future[object] = self._pool.submit(
            self.replica.put,
            name,
            data,
            retain_until=retain_until,
            mode=mode,
            legal_hold=legal_hold,
        )
        info = self.primary.put(
            name, data, retain_until=retain_until, mode=mode, legal_hold=legal_hold
        )
        self._both(rep)
        return info

    def put_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
    ) -> list[ObjectInfo]:
        rep: Future[object] = self._pool.submit(
            self.replica.put_many, items, retain_until=retain_until, mode=mode
        )
        infos = self.primary.put_many(items, retain_until=retain_until, mode=mode)
        self._both(rep)
        return infos

    def extend_retention(self, name: str, retain_until: datetime) -> ObjectInfo:
        rep: Future[object] = self._pool.submit(self.replica.extend_retention, name, retain_until)
        info = self.primary.extend_retention(name, retain_until)
        self._both(rep)
        return info

    def set_legal_hold(self, name: str, on: bool) -> ObjectInfo:
        # a hold is never left off a copy: both sides, synchronously, in every mode
        rep = self._pool.submit(self.replica.set_legal_hold, name, on)
        info = self.primary.set_legal_hold(name, on)
        rep.result()
        return info

    def delete(self, name: str) -> None:
        """Disposal: both copies (each side refuses before expiry or under hold)."""
        errors: list[BaseException] = []
        for side in (self.primary, self.replica):
            try:
                side.delete(name)
            except NotFound:
                pass
            except BaseException as e:  # try the other side too, then raise
                errors.append(e)
        if errors:
            raise errors[0]

    def flush(self) -> None:
        """Wait for background replica writes (async mode); raise the first error."""
        with self._mutex:
            pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise StorageError(
                f"the replica {self.replica.url} missed writes: {first}",
                "Run 'strongroom verify' and 'strongroom repair' once the replica is back.",
            )

    # --- reads: the primary, the replica for what it lost -------------------------------

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        try:
            return self.primary.get(name, offset, length)
        except NotFound:
            return self.replica.get(name, offset, length)

    def head(self, name: str) -> ObjectInfo:
        try:
            return self.primary.head(name)
        except NotFound:
            return self.replica.head(name)

    def exists(self, name: str) -> bool:
        return self.primary.exists(name) or self.replica.exists(name)

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter(sorted(set(self.primary.list(prefix)) | set(self.replica.list(prefix))))

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._pool.shutdown()
            try:
                self.primary.close()
            finally:
                self.replica.close()
