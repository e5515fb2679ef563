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


#: a JSON string literal for ``str`` exactly as :func:`canonical_json` writes it (the C
#: function ``json`` itself uses); raises nothing, so encode the result to find lone
#: surrogates
json_string = json.encoder.encode_basestring


def _check(value: Any) -> None:
    """Reject anything outside the profile; iterative, dispatching on exact types."""
    stack = [value]
    seen = 0
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if not -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
                raise ValueError(f"integer {v} outside the JCS safe range")
        elif t is dict:
            for k in v:
                if type(k) is not str or not k.isascii():
                    raise ValueError(f"canonical JSON keys must be ASCII strings, got {k!r}")
            stack.extend(v.values())
        elif t is list or t is tuple:
            stack.extend(v)
        else:
            raise ValueError(f"type {t.__name__} is not allowed in canonical JSON")
        seen += 1
        if seen > 100_000:
            raise ValueError("canonical JSON value too large")


def canonical_json(value: Any, *, checked: bool = True) -> bytes:
    """RFC 8785 bytes of ``value`` (restricted to the types listed in the module doc).

    ``checked=False`` skips the type walk for values our own code built from known types
    (the append hot path); anything decoded from outside is always checked.
    """
    if checked:
        _check(value)
    # str.encode raises on lone surrogates (UnicodeEncodeError is a ValueError)
    return _encoder.encode(value).encode("utf-8")
