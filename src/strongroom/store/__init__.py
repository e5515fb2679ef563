"""Storage backends behind one write-once interface (see :mod:`strongroom.store.base`).

:func:`open_store` turns a store URL into a backend:

* a plain path or ``file:///path`` -> :class:`LocalStore` (a directory; software-
  enforced retention, tamper-evident but not non-erasable);
* ``memory://name`` -> :class:`MemoryStore` (a new, empty in-memory store on every
  call; the name only appears in messages; for tests only).

* ``s3://bucket/prefix[?endpoint=URL&region=NAME]`` -> :class:`S3Store` (a bucket with
  Object Lock: retention enforced by the storage; credentials from the AWS chain).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from strongroom.errors import BadInput
from strongroom.store.base import Now, ObjectInfo, RetentionMode, Store, check_name
from strongroom.store.local import LocalStore
from strongroom.store.memory import MemoryStore

__all__ = [
    "LocalStore",
    "MemoryStore",
    "Now",
    "ObjectInfo",
    "RetentionMode",
    "Store",
    "check_name",
    "open_store",
]


def open_store(url: str, now: Now) -> Store:
    """Open the store named by ``url``, with ``now`` as its retention clock.

    Raises :class:`BadInput` for an empty URL, a ``file://`` URL naming another
    host, or an unknown scheme (the message names the scheme).
    """
    if not url:
        raise BadInput("empty store URL", "Give a directory path, file:///path or memory://name.")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return LocalStore(Path(url), now)
    scheme = scheme.lower()
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise BadInput(f"store URL {url!r} names host {parts.netloc!r}; only local paths work")
        if not parts.path or parts.query or parts.fragment:
            raise BadInput(f"store URL {url!r} is not of the form file:///absolute/path")
        return LocalStore(Path(unquote(parts.path)), now)
    if scheme == "memory":
        return MemoryStore(now, rest)
    if scheme == "s3":
        # imported here: boto3 adds ~0.3 s to every CLI start, local vaults never need it
        from strongroom.store.s3 import S3Store  # noqa: PLC0415

        return S3Store(url, now)
    raise BadInput(
        f"unknown store URL scheme {scheme!r} in {url!r}",
        "Use a directory path, file:///path, s3://bucket/prefix or memory://name.",
    )
