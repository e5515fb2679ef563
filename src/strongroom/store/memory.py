"""An in-memory store with the same semantics as :class:`LocalStore`.

For fast unit tests only: nothing is durable, nothing survives the process, and
retention is a Python ``if``. Never point a vault holding records at it.

It keeps its retention state in the same :class:`~strongroom.store.local.LockState`
as ``LocalStore`` (same rules, same messages) and refuses the same name
combinations a directory cannot hold (``a`` with ``a/b``, ``a`` with ``a.json/b``),
so code that passes its unit tests on memory does not fail on disk for that reason.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime

from strongroom.errors import BadInput, NotFound, ObjectExists, StorageError
from strongroom.store.base import Now, ObjectInfo, RetentionMode, check_name, utc
from strongroom.store.rules import LockState, check_range, check_transition


def _ancestors(name: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``."""
    return [name[:i] for i, c in enumerate(name) if c == "/"]


class MemoryStore:
    """A write-once store in a dict, for fast unit tests only (see module docstring)."""

    url: str

    def __init__(self, now: Now, name: str = "") -> None:
        self.url = f"memory://{name}"
        self._now = now
        self._objects: dict[str, tuple[bytes, LockState]] = {}
        self._dirs: dict[str, int] = {}  # prefix directory -> objects below it
        self._mutex = threading.RLock()
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"

    def close(self) -> None:
        """Mark the store closed; further use raises StorageError. Data is kept."""
        self._closed = True

    def _check(self, name: str) -> str:
        if self._closed:
            raise StorageError(f"store {self.url} is closed")
        return check_name(name)

    def _entry(self, name: str) -> tuple[bytes, LockState]:
        try:
            return self._objects[self._check(name)]
        except KeyError:
            raise NotFound(f"no object {name!r} in {self.url}") from None

    def _refuse_conflict(self, name: str) -> None:
        """Mirror LocalStore: a name cannot be both an object and a directory."""
        clash = [d for d in (name, f"{name}.json") if d in self._dirs]
        for a in _ancestors(name):
            if a in self._objects or (a.endswith(".json") and a[:-5] in self._objects):
                clash.append(a)
        if clash:
            raise BadInput(
                f"cannot store {name!r} in {self.url}: {clash[0]!r} is an object or a prefix "
                "of other objects, and this store cannot hold a name that is both"
            )

    def _update(self, name: str, new: LockState) -> ObjectInfo:
        data, old = self._objects[name]
        check_transition(name, old, new)
        self._objects[name] = (data, new)
        return new.info(name)

    def put(
        self,
        name: str,
        data: bytes | bytearray,
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
        legal_hold: bool = False,
    ) -> ObjectInfo:
        """Create ``name``; an identical re-put is a retry (see ``Store.put``)."""
        self._check(name)
        retain_until = utc(retain_until)
        mode = RetentionMode(mode)
        data = bytes(data)
        with self._mutex:
            existing = self._objects.get(name)
            if existing is not None:
                old_data, state = existing
                if old_data != data:
                    raise ObjectExists(
                        f"{name!r} already exists in {self.url} with different content; "
                        "objects are never overwritten"
                    )
                return self._update(name, state.merged_for_retry(retain_until, mode, legal_hold))
            self._refuse_conflict(name)
            state = LockState(retain_until, mode, legal_hold, len(data), utc(self._now()))
            self._objects[name] = (data, state)
            for a in _ancestors(name):
                self._dirs[a] = self._dirs.get(a, 0) + 1
            return state.info(name)

    def put_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
    ) -> list[ObjectInfo]:
        return [self.put(n, d, retain_until=retain_until, mode=mode) for n, d in items]

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        check_range(offset, length)
        data, _ = self._entry(name)
        return data[offset:] if length is None else data[offset : offset + length]

    def head(self, name: str) -> ObjectInfo:
        return self._entry(name)[1].info(name)

    def exists(self, name: str) -> bool:
        return self._check(name) in self._objects

    def list(self, prefix: str = "") -> Iterator[str]:
        """Sorted names starting with ``prefix``, as a snapshot taken at the call."""
        if self._closed:
            raise StorageError(f"store {self.url} is closed")
        with self._mutex:
            names = sorted(n for n in self._objects if n.startswith(prefix))
        return iter(names)

    def extend_retention(self, name: str, retain_until: datetime) -> ObjectInfo:
        with self._mutex:
            _, state = self._entry(name)
            return self._update(name, state.extended(name, retain_until))

    def set_legal_hold(self, name: str, on: bool) -> ObjectInfo:
        with self._mutex:
            _, state = self._entry(name)
            return self._update(name, state.with_hold(on))

    def delete(self, name: str) -> None:
        with self._mutex:
            _, state = self._entry(name)
            state.check_delete(name, utc(self._now()))
            del self._objects[name]
            for a in _ancestors(name):
                self._dirs[a] -= 1
                if not self._dirs[a]:
                    del self._dirs[a]
