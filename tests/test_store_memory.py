"""MemoryStore: the store contract, plus the few things specific to it."""

from __future__ import annotations

import pytest

from strongroom.errors import StorageError
from strongroom.store import MemoryStore, Store, open_store
from tests.store_contract import DAY, T0, FakeClock, MakeStore, StoreContract


class TestMemoryStoreContract(StoreContract):
    @pytest.fixture
    def make_store(self) -> MakeStore:
        return lambda clock: MemoryStore(clock.now, "contract")


def test_open_store_memory_url_gives_a_fresh_store() -> None:
    clock = FakeClock()
    first = open_store("memory://scratch", clock.now)
    assert isinstance(first, MemoryStore) and isinstance(first, Store)
    assert first.url == "memory://scratch"
    first.put("a", b"x", retain_until=T0 + DAY)
    second = open_store("MEMORY://scratch", clock.now)
    assert list(second.list()) == []


def test_docstring_says_tests_only() -> None:
    assert MemoryStore.__doc__ is not None and "tests only" in MemoryStore.__doc__


def test_closed_store_refuses_use() -> None:
    store = MemoryStore(FakeClock().now)
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.put("a", b"x", retain_until=T0)
    with pytest.raises(StorageError, match="closed"):
        store.list()


def test_get_copies_are_independent() -> None:
    """Mutating the buffer given to put does not change the stored object."""
    store = MemoryStore(FakeClock().now)
    buf = bytearray(b"abc")
    store.put("a", buf, retain_until=T0)
    buf[0] = ord("z")
    assert store.get("a") == b"abc"
