"""Record and hold ids: ULID-style, sortable by creation time.

48 bits of milliseconds then 80 random bits (``secrets``), in Crockford base32 — the
ULID layout (github.com/ulid/spec): 10 characters of time, 16 of randomness. A dozen
lines do not justify a dependency.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


def new_id(now: datetime) -> str:
    ms = int(now.timestamp() * 1000)
    head = "".join(_CROCKFORD[(ms >> (5 * i)) & 31] for i in range(9, -1, -1))
    tail = base64.b32encode(secrets.token_bytes(10)).decode().translate(_FROM_RFC4648)
    return head + tail
