"""Record and hold ids: ULID-style, sortable by creation time.

48 bits of milliseconds then 80 random bits (``secrets``), in Crockford base32 — the
ULID layout (github.com/ulid/spec). Twelve lines do not justify a dependency.
"""

from __future__ import annotations

import secrets
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now: datetime) -> str:
    n = (int(now.timestamp() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(26)))
