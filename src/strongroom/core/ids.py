"""Record and hold ids: ULID-style, sortable by creation time.

48 bits of milliseconds then 80 random bits (``os.urandom``), in Crockford base32 — the
ULID layout (github.com/ulid/spec): 10 characters of time, 16 of randomness. A dozen
lines do not justify a dependency. Ids are made once per record on the append hot path,
so the base32 digits come from a table of all 1024 digit pairs.
"""

from __future__ import annotations

import os
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)  # 10 bits -> 2 digits
_head: list[tuple[datetime | None, str]] = [(None, "")]  # the last time and its digits


def _base32(n: int, digits: int) -> str:
    """``n`` as exactly ``digits`` (even) Crockford base32 digits, most significant first."""
    return "".join(_PAIRS[(n >> s) & 1023] for s in range(5 * digits - 10, -1, -10))


def new_id(now: datetime) -> str:
    last = _head[0]
    if last[0] != now:
        last = _head[0] = (now, _base32(int(now.timestamp() * 1000), 10))
    n = int.from_bytes(os.urandom(10))
    p = _PAIRS
    return (
        last[1]
        + p[n >> 70]
        + p[(n >> 60) & 1023]
        + p[(n >> 50) & 1023]
        + p[(n >> 40) & 1023]
        + p[(n >> 30) & 1023]
        + p[(n >> 20) & 1023]
        + p[(n >> 10) & 1023]
        + p[n & 1023]
    )
