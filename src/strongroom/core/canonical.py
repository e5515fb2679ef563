"""Canonical JSON (RFC 8785, JCS) for everything that is hashed or signed.

``rfc8785`` (Trail of Bits) is the reference implementation and is used as the oracle
in tests. It is pure Python and costs tens of microseconds per entry, which matters on
the append hot path (one entry per record). For the value types our entries use —
dicts with string keys, lists, strings, integers in the IEEE-754 safe range, booleans
and null, never floats — the standard library's ``json.dumps`` with sorted keys,
compact separators and ``ensure_ascii=False`` produces exactly the JCS bytes: JCS
sorts keys by UTF-16 code units (identical to code-point order for the ASCII keys we
use), serialises integers in shortest decimal form, and escapes strings like
ECMAScript's JSON.stringify, which ``json`` matches for every code point except lone
surrogates (which we reject). ``tests/test_canonical.py`` checks the equivalence
against ``rfc8785`` with hypothesis.
"""

from __future__ import annotations

import json
from typing import Any

_MAX_SAFE_INT = 2**53 - 1
_encoder = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)


def _check(value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise ValueError("canonical JSON nested too deeply")
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            value.encode("utf-8")  # raises on lone surrogates
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise ValueError(f"integer {value} outside the JCS safe range")
        return
    if isinstance(value, list | tuple):
        for v in value:
            _check(v, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not k.isascii():
                raise ValueError(f"canonical JSON keys must be ASCII strings, got {k!r}")
            _check(v, depth + 1)
        return
    raise ValueError(f"type {type(value).__name__} is not allowed in canonical JSON")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value`` (restricted to the types listed in the module doc)."""
    _check(value)
    return _encoder.encode(value).encode("utf-8")
