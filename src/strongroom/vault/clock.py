"""The compliance clock's persisted state (``state/clock.json``) and its readings.

The rules live in :mod:`strongroom.core.retention` (``read_clock``, ``confirm_jump``):
never backwards; a forward jump beyond the threshold is not trusted until an operator
confirms it. This class keeps the state between readings and on disk; the vault logs
the events it reports (a jump, the clock going back) in the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from strongroom.core.canonical import canonical_json
from strongroom.core.retention import (
    ClockReading,
    ClockState,
    confirm_jump,
    format_time,
    read_clock,
)
from strongroom.errors import CorruptVault, StrongroomError
from strongroom.vault.config import write_atomic

FAST = timedelta(seconds=1)  # readings this close after the high-water mark skip the rules


class ComplianceClock:
    def __init__(self, path: Path, system: Callable[[], datetime]) -> None:
        self.path = path
        self.system = system
        self.state = self._load()
        self.dirty = False  # changed since saved (saved at each commit, at once on a jump)
        self._went_back_logged = False

    def _load(self) -> ClockState | None:
        try:
            return ClockState.from_json(json.loads(self.path.read_bytes()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, StrongroomError) as e:
            raise CorruptVault(
                f"compliance clock state {self.path} is corrupt: {e}",
                "Restore it from backup; the ledger's last entry time is a floor.",
            ) from e

    def save(self) -> None:
        if self.state is not None:
            write_atomic(self.path, canonical_json(self.state.to_json()))
        self.dirty = False

    def floor(self, t: datetime) -> None:
        """The ledger's last entry time is a floor for the high-water mark (the state file
        may have been lost or be older than the ledger)."""
        if self.state is None or self.state.high_water < t:
            self.state = ClockState(t, self.state.pending_jump if self.state else None)

    @property
    def high_water(self) -> datetime | None:
        return self.state.high_water if self.state else None

    def peek(self) -> ClockReading:
        """A reading that changes nothing (for verify, which must not write)."""
        return read_clock(self.state, self.system())

    def fast(self) -> datetime | None:
        """System time when it is just past the high-water mark (the common case: no
        rule can apply), else None and the caller takes a full :meth:`read`."""
        st, now = self.state, self.system()
        if (
            st is not None
            and st.pending_jump is None
            and st.high_water <= now < st.high_water + FAST
        ):
            return now
        return None

    def read(self) -> tuple[ClockReading, dict[str, Any] | None]:
        """A full reading, and the clock event to record in the ledger, if any."""
        reading = read_clock(self.state, self.system())
        if reading.state != self.state:
            self.state = reading.state
            self.dirty = True
            if reading.jumped:
                self.save()
        event: dict[str, Any] | None = None
        if reading.jumped:
            event = {
                "event": "forward-jump",
                "high_water": format_time(reading.trusted),
                "observed": format_time(reading.now),
            }
        elif reading.went_back and not self._went_back_logged:
            self._went_back_logged = True
            event = {
                "event": "went-back",
                "high_water": format_time(reading.trusted),
                "observed": format_time(self.system()),
            }
        return reading, event

    def confirm(self) -> tuple[datetime, datetime]:
        """Accept the system time after a jump; returns (old, new) high-water marks."""
        st = self.state or ClockState(self.system())
        self.state = confirm_jump(st, self.system())
        self.save()
        return st.high_water, self.state.high_water
