"""Retention state of one object and the rules for changing it, shared by the backends.

Extend, never shorten; COMPLIANCE is never lowered; a legal hold is a flag. The
local backend keeps this state as JSON in ``locks/<name>.json`` (LOCK_FORMAT); the
memory backend keeps it in a dict; both apply :func:`check_transition`, so they refuse
with the same messages (``tests/store_contract.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from strongroom.errors import BadInput, CorruptVault, Refused
from strongroom.store.base import ObjectInfo, RetentionMode, utc

#: version of the lock-file JSON; bump on incompatible change
LOCK_FORMAT = 1

_LOCK_FIELDS = frozenset(
    {"format", "name", "retain_until", "mode", "legal_hold", "size", "created"}
)


def iso(dt: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, microseconds kept (round-trips exactly)."""
    return utc(dt).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class LockState:
    """Retention state of one object, and the write-once rules that change it.

    Both :class:`LocalStore` and the test-only ``MemoryStore`` keep their state in
    this class, so the two cannot drift apart on what is allowed.
    """

    retain_until: datetime
    mode: RetentionMode
    legal_hold: bool
    size: int
    created: datetime

    def info(self, name: str) -> ObjectInfo:
        s = self
        return ObjectInfo(name, s.size, s.retain_until, s.mode, s.legal_hold, s.created)

    def extended(self, name: str, retain_until: datetime) -> LockState:
        """The state with retention moved to ``retain_until``; Refused if earlier."""
        new = utc(retain_until)
        if new < self.retain_until:
            raise Refused(
                f"refusing to shorten the retention of {name!r}: it is retained until "
                f"{iso(self.retain_until)}, requested {iso(new)}; retention can only be "
                "extended"
            )
        return self if new == self.retain_until else replace(self, retain_until=new)

    def with_hold(self, on: bool) -> LockState:
        return self if self.legal_hold == on else replace(self, legal_hold=on)

    def merged_for_retry(
        self, retain_until: datetime, mode: RetentionMode, legal_hold: bool
    ) -> LockState:
        """State after a byte-identical re-``put``: adds protection, never removes it.

        A later retain-until is applied, a COMPLIANCE request upgrades GOVERNANCE,
        and a requested hold is set; an earlier date, a GOVERNANCE request or
        ``legal_hold=False`` change nothing (a retry must not weaken anything).
        """
        new = self
        if utc(retain_until) > new.retain_until:
            new = replace(new, retain_until=utc(retain_until))
        if mode is RetentionMode.COMPLIANCE and new.mode is not RetentionMode.COMPLIANCE:
            new = replace(new, mode=RetentionMode.COMPLIANCE)
        if legal_hold and not new.legal_hold:
            new = replace(new, legal_hold=True)
        return new

    def check_delete(self, name: str, now: datetime) -> None:
        """Raise Refused unless ``now >= retain_until`` and no legal hold is set."""
        reasons = []
        if utc(now) < self.retain_until:
            reasons.append(f"it is retained until {iso(self.retain_until)} (now {iso(now)})")
        if self.legal_hold:
            reasons.append("it is under legal hold")
        if reasons:
            raise Refused(f"refusing to delete {name!r}: {' and '.join(reasons)}")

    def to_json(self, name: str) -> bytes:
        doc = {
            "format": LOCK_FORMAT,
            "name": name,
            "retain_until": iso(self.retain_until),
            "mode": self.mode.value,
            "legal_hold": self.legal_hold,
            "size": self.size,
            "created": iso(self.created),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json(cls, name: str, raw: bytes, where: str) -> LockState:
        """Parse and validate a lock file; anything unexpected is CorruptVault."""
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or set(doc) != _LOCK_FIELDS:
                raise ValueError(f"expected exactly the fields {sorted(_LOCK_FIELDS)}")
            if doc["format"] != LOCK_FORMAT or doc["name"] != name:
                raise ValueError(f"format {doc['format']!r} for name {doc['name']!r}")
            size, hold = doc["size"], doc["legal_hold"]
            if type(size) is not int or size < 0 or type(hold) is not bool:
                raise ValueError("size or legal_hold is of the wrong type")
            mode = RetentionMode(doc["mode"])
            return cls(
                _utc_field(doc["retain_until"]), mode, hold, size, _utc_field(doc["created"])
            )
        except ValueError as e:
            raise CorruptVault(
                f"lock file for {name!r} at {where} is invalid: {e}",
                "Retention state is unknown, so the object is treated as retained; "
                "run 'strongroom verify' and restore the lock file from a replica.",
            ) from e


def _utc_field(value: object) -> datetime:
    """Parse a lock-file time: an ISO-8601 string with a zero UTC offset."""
    dt = datetime.fromisoformat(value) if isinstance(value, str) else None
    if dt is None or dt.utcoffset() != timedelta(0):
        raise ValueError(f"not an ISO-8601 UTC time: {value!r}")
    return dt.astimezone(UTC)


def check_transition(name: str, old: LockState, new: LockState) -> None:
    """Last check before any lock-state write: nothing may be weakened.

    Retention never moves earlier, COMPLIANCE is never lowered, and size and
    creation time never change. The public operations already follow these rules;
    this guards the write itself against a bug in them.
    """
    if new.retain_until < old.retain_until:
        old.extended(name, new.retain_until)  # raises Refused with both dates
    if old.mode is RetentionMode.COMPLIANCE and new.mode is not RetentionMode.COMPLIANCE:
        raise Refused(f"refusing to lower the mode of {name!r} from COMPLIANCE to {new.mode}")
    if (new.size, new.created) != (old.size, old.created):
        raise Refused(f"refusing to change the size or creation time of {name!r}")


def check_range(offset: int, length: int | None) -> None:
    """Reject negative offsets and lengths (BadInput)."""
    if offset < 0 or (length is not None and length < 0):
        raise BadInput(f"invalid byte range: offset={offset}, length={length}")


# ----------------------------------------------------------------------- helpers
