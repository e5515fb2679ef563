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
_head: list[tuple[int, str]] = [(-1, "")]  # the last millisecond and its digits


def _base32(n: int, digits: int) -> str:
    """``n`` as exactly ``digits`` (even) Crockford base32 digits, most significant first."""
    return "".join(_PAIRS[(n >> s) & 1023] for s in range(5 * digits - 10, -1, -10))


def new_id(now: datetime) -> str:
    ms = int(now.timestamp() * 1000)
    last = _head[0]
    if last[0] != ms:
        last = _head[0] = (ms, _base32(ms, 10))
    return last[1] + _base32(int.from_bytes(os.urandom(10)), 16)
