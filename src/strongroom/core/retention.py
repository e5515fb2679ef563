"""Retention arithmetic, policies and the compliance clock (pure logic).

A policy maps a record's class and source to a period. When several rules match,
the longest period wins; when none matches, the default applies (six years, FINRA
Rule 4511(b) for records with no other period). Periods are added with calendar
arithmetic that rounds *up*: a date that does not exist in the target month moves
to the first day of the next month, so a period is never cut short.

The compliance clock (REQUIREMENTS.md F2-i-B-6) never goes backwards: its time is
``max(system time, high-water mark)``. A forward jump larger than a threshold is
not trusted until an operator confirms it; until then the clock keeps the old
high-water mark for disposal decisions (appends still use it, so retention is
computed from the *earlier* time — never shorter than intended).
"""

from __future__ import annotations

import calendar
import fnmatch
import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from strongroom.errors import BadInput

_PERIOD = re.compile(r"^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)d)?$")
MAX_YEARS = 200


@dataclass(frozen=True, slots=True)
class Period:
    years: int = 0
    months: int = 0
    days: int = 0

    def __str__(self) -> str:
        parts = [
            f"{v}{u}" for v, u in ((self.years, "y"), (self.months, "m"), (self.days, "d")) if v
        ]
        return "".join(parts) or "0d"


def parse_period(text: str) -> Period:
    """Parse ``6y``, ``18m``, ``90d``, ``3y6m`` ... into a :class:`Period`."""
    m = _PERIOD.match(text.strip().lower())
    if not m or not any(m.groups()):
        raise BadInput(
            f"invalid retention period {text!r}",
            "Write periods as years/months/days, e.g. '6y', '3y6m' or '90d'.",
        )
    years, months, days = (int(g) if g else 0 for g in m.groups())
    if years + months // 12 + days // 365 > MAX_YEARS:
        raise BadInput(f"retention period {text!r} exceeds {MAX_YEARS} years")
    return Period(years, months, days)


def add_period(start: datetime, period: Period) -> datetime:
    """``start + period``, rounding up when the target day does not exist."""
    total_months = start.month - 1 + period.months + 12 * period.years
    year, month = start.year + total_months // 12, total_months % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if start.day > last:
        # e.g. 29 Feb + 1y: 1 Mar, never 28 Feb (that would shorten retention)
        moved = start.replace(year=year, month=month, day=last) + timedelta(days=1)
    else:
        moved = start.replace(year=year, month=month)
    return moved + timedelta(days=period.days)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    period: Period
    record_class: str = "*"
    source: str = "*"

    def matches(self, record_class: str, source: str) -> bool:
        return fnmatch.fnmatchcase(record_class, self.record_class) and fnmatch.fnmatchcase(
            source, self.source
        )


DEFAULT_PERIOD = Period(years=6)


@dataclass(frozen=True, slots=True)
class Decision:
    rule: str
    period: Period
    retain_until: datetime


@dataclass(frozen=True, slots=True)
class Policy:
    """Retention rules. Longest matching period wins; ``default`` when none match."""

    rules: tuple[Rule, ...] = ()
    default: Period = DEFAULT_PERIOD

    def decide(self, record_class: str, source: str, at: datetime) -> Decision:
        matched = _matching(self, record_class, source)
        if not matched:
            return Decision("default", self.default, add_period(at, self.default))
        if len(matched) == 1:
            r = matched[0]
            return Decision(r.name, r.period, add_period(at, r.period))
        if matched:
            best = max(
                (Decision(r.name, r.period, add_period(at, r.period)) for r in matched),
                key=lambda d: d.retain_until,
            )
        return best

    def longest(self, at: datetime) -> datetime:
        """The latest retain-until any rule (or the default) gives at ``at``."""
        periods = [self.default, *(r.period for r in self.rules)]
        return max(add_period(at, p) for p in periods)

    def to_json(self) -> dict[str, Any]:
        return {
            "default": str(self.default),
            "rules": [
                {
                    "name": r.name,
                    "class": r.record_class,
                    "source": r.source,
                    "period": str(r.period),
                }
                for r in self.rules
            ],
        }


@functools.lru_cache(maxsize=1024)
def _matching(policy: Policy, record_class: str, source: str) -> tuple[Rule, ...]:
    """The rules that match a class and source (cached: decided once per pair)."""
    return tuple(r for r in policy.rules if r.matches(record_class, source))


def policy_from_mapping(data: Mapping[str, Any], origin: str = "policy") -> Policy:
    """Build a policy from the ``[retention]`` table of a config file."""
    ret = data.get("retention", {})
    if not isinstance(ret, Mapping):
        raise BadInput(f"{origin}: [retention] must be a table")
    default = parse_period(str(ret.get("default", "6y")))
    raw_rules = ret.get("rule", [])
    if not isinstance(raw_rules, Sequence):
        raise BadInput(f"{origin}: [[retention.rule]] must be an array of tables")
    rules: list[Rule] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_rules):
        if not isinstance(raw, Mapping) or "period" not in raw:
            raise BadInput(f"{origin}: retention rule #{i + 1} needs at least 'period'")
        name = str(raw.get("name", f"rule-{i + 1}"))
        if name in names or name == "default":
            raise BadInput(f"{origin}: duplicate retention rule name {name!r}")
        names.add(name)
        rules.append(
            Rule(
                name=name,
                period=parse_period(str(raw["period"])),
                record_class=str(raw.get("class", "*")),
                source=str(raw.get("source", "*")),
            )
        )
    return Policy(tuple(rules), default)


def load_policy(path: Path | None) -> Policy:
    """Read a TOML config file's retention policy; no file means the default policy."""
    if path is None:
        return Policy()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as e:
        raise BadInput(f"config file {path} does not exist") from e
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadInput(f"config file {path} is not readable TOML: {e}") from e
    return policy_from_mapping(data, str(path))


# --- compliance clock -----------------------------------------------------------------

DEFAULT_JUMP_THRESHOLD = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ClockState:
    """Persisted clock state: the high-water mark and any unconfirmed forward jump."""

    high_water: datetime
    pending_jump: datetime | None = None  # system time seen when the jump was detected

    def to_json(self) -> dict[str, Any]:
        return {
            "high_water": format_time(self.high_water),
            "pending_jump": format_time(self.pending_jump) if self.pending_jump else None,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ClockState:
        pj = data.get("pending_jump")
        return ClockState(parse_time(str(data["high_water"])), parse_time(str(pj)) if pj else None)


@dataclass(frozen=True, slots=True)
class ClockReading:
    """One reading. ``now`` stamps events and starts retention periods (the later of
    system time and high-water mark, so periods are never computed from too early a
    time); ``trusted`` is what disposal may rely on (never past an unconfirmed jump)."""

    now: datetime
    trusted: datetime
    state: ClockState  # the state to persist
    went_back: bool = False  # system time was behind the high-water mark
    jumped: bool = False  # a new forward jump was detected in this reading
    paused: bool = False  # disposal must wait for an operator's confirmation


def read_clock(
    state: ClockState | None,
    system_now: datetime,
    threshold: timedelta = DEFAULT_JUMP_THRESHOLD,
) -> ClockReading:
    """One reading of the compliance clock. Pure: the caller persists ``state``."""
    system_now = system_now.astimezone(UTC)
    if state is None:
        return ClockReading(system_now, system_now, ClockState(system_now))
    stamp = max(system_now, state.high_water)
    if state.pending_jump is not None:
        # keep the trusted time until an operator confirms the jump
        return ClockReading(stamp, state.high_water, state, paused=True)
    if system_now < state.high_water:
        return ClockReading(stamp, state.high_water, state, went_back=True)
    if system_now - state.high_water > threshold:
        pending = ClockState(state.high_water, pending_jump=system_now)
        return ClockReading(stamp, state.high_water, pending, jumped=True, paused=True)
    return ClockReading(system_now, system_now, ClockState(system_now))


def confirm_jump(state: ClockState, system_now: datetime) -> ClockState:
    """Accept the system time after a forward jump (never moves backwards)."""
    return ClockState(max(state.high_water, system_now.astimezone(UTC)))


# --- time formatting --------------------------------------------------------------------


def format_time(dt: datetime) -> str:
    """RFC 3339 UTC with microseconds and a ``Z``: the only time format in entries."""
    if dt.tzinfo is UTC and dt.year >= 1000:  # the hot path: already UTC (year < 10000)
        return dt.isoformat(timespec="microseconds")[:-6] + "Z"
    if dt.tzinfo is None:
        raise ValueError("naive datetime")
    if dt.utcoffset():
        dt = dt.astimezone(UTC)
    if not 1000 <= dt.year <= 9999:
        raise ValueError(f"year {dt.year} is outside what entries can record")
    # isoformat is several times faster than strftime on the append hot path
    return dt.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    if len(text) != 27 or text[10] != "T" or text[-1] != "Z" or text[19] != ".":
        raise BadInput(f"invalid timestamp {text!r}: expected YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        dt = datetime.fromisoformat(text[:-1])
    except ValueError as e:
        raise BadInput(f"invalid timestamp {text!r}: expected YYYY-MM-DDTHH:MM:SS.ffffffZ") from e
    return dt.replace(tzinfo=UTC)
