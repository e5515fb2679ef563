"""The store protocol: one small interface every backend implements.

A store holds named, immutable objects. ``put`` is create-only: there is no
overwrite and no rename. Each object carries a retain-until time and a mode;
before retain-until, or while a legal hold is set, the object cannot be deleted.
Retention can be extended, never shortened. A COMPLIANCE object's mode cannot be
lowered to GOVERNANCE.

Backends: ``local`` (a directory; retention enforced in software and re-checked
by ``verify``), ``memory`` (fast unit tests only) and, later, ``s3`` (Object Lock
enforced by the server). All pass ``tests/store_contract.py``.

Object names are ``/``-separated paths of ``[A-Za-z0-9._-]`` segments; no segment
is empty, ``.`` or ``..``. The ``now`` used for retention decisions comes from an
injected clock (``Callable[[], datetime]``), never read here directly.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from strongroom.errors import BadInput

Now = Callable[[], datetime]


class RetentionMode(enum.StrEnum):
    """Lock mode, as in S3 Object Lock. COMPLIANCE cannot be bypassed or lowered."""

    COMPLIANCE = "COMPLIANCE"
    GOVERNANCE = "GOVERNANCE"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    name: str
    size: int
    retain_until: datetime
    mode: RetentionMode
    legal_hold: bool
    created: datetime


_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_NAME = 512


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid object name, else raise :class:`BadInput`."""
    if not name or len(name) > MAX_NAME:
        raise BadInput(f"invalid object name {name!r}: empty or longer than {MAX_NAME}")
    for seg in name.split("/"):
        if seg in ("", ".", "..") or not _SEGMENT.fullmatch(seg):
            raise BadInput(f"invalid object name {name!r}: bad segment {seg!r}")
    return name


def utc(dt: datetime) -> datetime:
    """Normalise an aware datetime to UTC; reject naive ones (they are a bug)."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime given where an aware UTC time is required")
    return dt.astimezone(UTC)


@runtime_checkable
class Store(Protocol):
    """A write-once object store."""

    #: a short URL-like description for messages, e.g. ``file:///srv/vault``
    url: str

    def put(
        self,
        name: str,
        data: bytes | bytearray,
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
        legal_hold: bool = False,
    ) -> ObjectInfo:
        """Create ``name`` with ``data``, durably, before returning.

        If ``name`` exists with byte-identical content, this is a no-op that returns
        the existing info (idempotent retry after a crash) — but retention is then
        extended to ``retain_until`` if that is later. If it exists with other
        content, raise :class:`~strongroom.errors.ObjectExists`. A full disk raises
        :class:`~strongroom.errors.DiskFull` and leaves no visible partial object.
        """
        ...

    def put_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        retain_until: datetime,
        mode: RetentionMode = RetentionMode.COMPLIANCE,
    ) -> list[ObjectInfo]:
        """:meth:`put` each ``(name, data)`` with the same retention; all durable on
        return (a backend may write them concurrently). On error, some may exist."""
        ...

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Read ``length`` bytes from ``offset`` (all to the end when None).

        Raise :class:`~strongroom.errors.NotFound` when the object does not exist.
        """
        ...

    def head(self, name: str) -> ObjectInfo:
        """Size, retention and hold state; NotFound if absent."""
        ...

    def exists(self, name: str) -> bool: ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Names starting with ``prefix`` (a plain string prefix), in sorted order."""
        ...

    def extend_retention(self, name: str, retain_until: datetime) -> ObjectInfo:
        """Set retain-until to ``retain_until`` if later; never shortens.

        An earlier date raises :class:`~strongroom.errors.Refused`. Equal is a no-op.
        """
        ...

    def set_legal_hold(self, name: str, on: bool) -> ObjectInfo:
        """Set or clear the object's legal-hold flag."""
        ...

    def delete(self, name: str) -> None:
        """Delete an expired, unheld object.

        Raise :class:`~strongroom.errors.Refused` if now < retain-until or the
        legal hold is set; NotFound if absent.
        """
        ...

    def close(self) -> None: ...
