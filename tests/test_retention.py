"""Retention arithmetic, policy parsing and the compliance clock (pure logic; F2-i-B-6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.core.retention import (
    ClockState,
    Period,
    add_period,
    confirm_jump,
    parse_period,
    policy_from_mapping,
    read_clock,
)
from strongroom.errors import BadInput

T0 = datetime(2024, 2, 29, 10, 0, tzinfo=UTC)


def test_leap_day_rounds_up_never_short() -> None:
    assert add_period(T0, Period(years=1)) == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert add_period(datetime(2026, 1, 31, tzinfo=UTC), Period(months=1)) == datetime(
        2026, 3, 1, tzinfo=UTC
    )


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(0, 50),
    st.integers(0, 30),
    st.integers(0, 400),
)
def test_period_is_never_shorter_than_its_days(start: datetime, y: int, m: int, d: int) -> None:
    end = add_period(start, Period(y, m, d))
    assert end - start >= timedelta(days=365 * y + 28 * m + d)


@pytest.mark.parametrize(
    "text,period",
    [
        ("6y", Period(6)),
        ("3y6m", Period(3, 6)),
        ("90d", Period(0, 0, 90)),
        ("1y2m3d", Period(1, 2, 3)),
    ],
)
def test_parse_period(text: str, period: Period) -> None:
    assert parse_period(text) == period


@pytest.mark.parametrize("text", ["", "6", "y", "-1y", "6x", "1d2y", "999y"])
def test_parse_period_rejects(text: str) -> None:
    with pytest.raises(BadInput):
        parse_period(text)


def test_policy_longest_wins_and_default() -> None:
    p = policy_from_mapping(
        {
            "retention": {
                "default": "6y",
                "rule": [
                    {"name": "chat", "class": "chat*", "period": "3y"},
                    {"name": "desk", "source": "desk-*", "period": "7y"},
                    {"name": "tiny", "class": "chat", "period": "30d"},
                ],
            }
        }
    )
    assert p.decide("chat", "desk-1", T0).rule == "desk"
    assert p.decide("chat", "other", T0).rule == "chat"
    assert p.decide("file", "other", T0).rule == "default"
    with pytest.raises(BadInput):
        policy_from_mapping({"retention": {"rule": [{"name": "x"}]}})
    with pytest.raises(BadInput):
        policy_from_mapping(
            {"retention": {"rule": [{"name": "a", "period": "1y"}, {"name": "a", "period": "2y"}]}}
        )


def test_clock_never_goes_back() -> None:
    st0 = ClockState(T0)
    r = read_clock(st0, T0 - timedelta(days=30))
    assert r.now == T0 and r.trusted == T0 and r.went_back and not r.paused


def test_small_forward_steps_advance_the_clock() -> None:
    r = read_clock(ClockState(T0), T0 + timedelta(days=6))
    assert r.trusted == T0 + timedelta(days=6) and not r.paused


def test_large_jump_pauses_until_confirmed() -> None:
    later = T0 + timedelta(days=3650)
    r = read_clock(ClockState(T0), later)
    assert r.jumped and r.paused and r.trusted == T0 and r.now == later
    again = read_clock(r.state, later + timedelta(hours=1))
    assert again.paused and again.trusted == T0 and not again.jumped
    ok = read_clock(confirm_jump(again.state, later), later + timedelta(hours=2))
    assert not ok.paused and ok.trusted == later + timedelta(hours=2)


@given(st.lists(st.integers(-(10**7), 10**7), min_size=1, max_size=30))
def test_trusted_time_is_monotonic(steps: list[int]) -> None:
    state, t, last = ClockState(T0), T0, T0
    for s in steps:
        t = t + timedelta(seconds=s)
        r = read_clock(state, t)
        assert r.trusted >= last and r.now >= r.trusted
        last, state = r.trusted, r.state
