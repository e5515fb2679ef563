"""What the catalog learns from a record's raw bytes: text, subject, participants.

Pure and total: any input yields a result. Input that cannot be parsed as its class
expects is still a valid record — its raw bytes are kept as received — and is
flagged ``unparsed`` with the reason, never dropped (ARCHITECTURE.md, "Records").

Limits on hostile input: only the first :data:`MAX_TEXT` bytes are indexed, JSON is
parsed only up to :data:`MAX_JSON` bytes and a nesting depth, and each field is cut.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_TEXT = 1 << 20  # bytes of a record that are indexed for full-text search
MAX_JSON = 1 << 20
MAX_FIELD = 64 << 10
MAX_PARTICIPANTS = 1000

_BODY_KEYS = ("message", "text", "body", "content")
_FROM_KEYS = ("user", "from", "sender", "author", "user_id", "username")
_TO_KEYS = ("to", "recipients", "members")
_SUBJECT_KEYS = ("subject", "channel", "channel_name", "room", "topic")


@dataclass(frozen=True, slots=True)
class Extracted:
    body: str
    subject: str
    participants: tuple[tuple[str, str], ...]
    flags: tuple[str, ...]
    error: str | None = None


def _text(data: bytes) -> str | None:
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start >= len(data) - 3 and len(data) >= MAX_TEXT:
            # cut inside a multi-byte character at the indexing limit
            return data[: e.start].decode("utf-8", "replace")
        return None


def _field(v: object) -> str:
    if isinstance(v, str):
        return v[:MAX_FIELD]
    if isinstance(v, int | float | bool):
        return str(v)
    return ""


def _chat(content: bytes, filename: str, truncated: bool) -> Extracted:
    text = _text(content)
    if truncated or len(content) > MAX_JSON:
        return Extracted(
            text or "",
            filename,
            (),
            ("unparsed",),
            f"chat message larger than {MAX_JSON} bytes is not parsed",
        )
    try:
        # text already decoded (strict UTF-8, no BOM) is not decoded again; anything else
        # goes through json's own detection (UTF-8 with a BOM, UTF-16, UTF-32)
        obj = json.loads(text if text and text[0] != "\ufeff" else content)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        return Extracted(text or "", filename, (), ("unparsed",), f"not valid JSON: {e}")
    if not isinstance(obj, dict):  # (json.loads bounds nesting: RecursionError above)
        return Extracted(text or "", filename, (), ("unparsed",), "not a JSON object")
    body = subject = ""
    for k in _BODY_KEYS:
        if k in obj:
            body = _field(obj[k])
            break
    for k in _SUBJECT_KEYS:
        if k in obj:
            subject = _field(obj[k])
            break
    people: list[tuple[str, str]] = []
    for k in _FROM_KEYS:
        if k in obj and (who := _field(obj[k])):
            people.append(("from", who))
            break
    for k in _TO_KEYS:
        v = obj.get(k)
        if v is not None:
            for x in v[:MAX_PARTICIPANTS] if isinstance(v, list) else (v,):
                if to := _field(x):
                    people.append(("to", to))
    flags: tuple[str, ...] = () if body else ("no-text",)
    return Extracted(body, subject, tuple(people[:MAX_PARTICIPANTS]), flags)


def extract(record_class: str, filename: str, content: bytes, truncated: bool) -> Extracted:
    """Index data for a record; ``truncated`` means ``content`` is only a prefix."""
    filename = filename[:MAX_FIELD]
    if record_class == "chat" or record_class.startswith("chat."):
        return _chat(content, filename, truncated)
    text = _text(content[:MAX_TEXT])
    if text is None:
        return Extracted("", filename, (), ("binary",))
    flags = ("index-truncated",) if truncated or len(content) > MAX_TEXT else ()
    return Extracted(text, filename, (), flags)
