"""Who is on call: rotations handing off in the company's zone across DST, layers, active
hours and overrides (apps/oncall/schedules.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.accounts.roles import Role
from apps.oncall.choices import Frequency
from apps.oncall.schedules import next_handoff, who_is_on_call
from apps.oncall.selectors import schedules_loaded
from tests.factories import CompanyFactory, UserFactory
from tests.oncall.factories import override, rotation, schedule_of

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def names(users) -> list[str]:
    return [user.full_name for user in users]


@pytest.fixture
def people(company_a):
    return [
        UserFactory(full_name=name, role=Role.TECHNICIAN, companies=[company_a])
        for name in ("Ann", "Bob", "Cid")
    ]


def loaded(schedule, at):
    return schedules_loaded(company_ids=[schedule.company_id], at=at).get(pk=schedule.pk)


def on_call(schedule, at) -> list[str]:
    return names(who_is_on_call(loaded(schedule, at), at))


def test_daily_hand_off_stays_at_nine_local_across_the_march_change_in_london(people):
    company = CompanyFactory(name="London Ltd", slug="london", timezone="Europe/London")
    schedule = schedule_of(company)
    ann, bob, _ = people
    rotation(schedule, [ann, bob], start=date(2026, 3, 27), handoff=time(9, 0))
    # 28 March 09:00 GMT is 09:00 UTC; 29 March 09:00 BST is 08:00 UTC (clocks went forward).
    assert on_call(schedule, utc(2026, 3, 27, 8, 59)) == []
    assert on_call(schedule, utc(2026, 3, 27, 9, 0)) == ["Ann"]
    assert on_call(schedule, utc(2026, 3, 28, 9, 0)) == ["Bob"]
    assert on_call(schedule, utc(2026, 3, 29, 7, 59)) == ["Bob"]
    assert on_call(schedule, utc(2026, 3, 29, 8, 0)) == ["Ann"]
    handoff = next_handoff(loaded(schedule, utc(2026, 3, 28, 10)), utc(2026, 3, 28, 10))
    assert handoff.at == utc(2026, 3, 29, 8, 0)
    assert names(handoff.users) == ["Ann"]


def test_daily_hand_off_stays_at_nine_local_across_the_november_change_in_new_york(people):
    company = CompanyFactory(name="NY Inc", slug="ny", timezone="America/New_York")
    schedule = schedule_of(company)
    ann, bob, cid = people
    rotation(schedule, [ann, bob, cid], start=date(2026, 10, 30), handoff=time(9, 0))
    # 31 October 09:00 EDT is 13:00 UTC; 1 November 09:00 EST is 14:00 UTC: a 25-hour turn.
    assert on_call(schedule, utc(2026, 10, 31, 13, 0)) == ["Bob"]
    assert on_call(schedule, utc(2026, 11, 1, 13, 59)) == ["Bob"]
    assert on_call(schedule, utc(2026, 11, 1, 14, 0)) == ["Cid"]
    handoff = next_handoff(loaded(schedule, utc(2026, 10, 31, 13)), utc(2026, 10, 31, 13))
    assert handoff.at - utc(2026, 10, 31, 13) == timedelta(hours=25)


def test_a_hand_off_in_the_repeated_hour_happens_once(people):
    """1 November 2026 in New York runs 01:00–02:00 twice; a 01:30 hand-off happens at the
    first 01:30 (05:30 UTC) and the second 01:30 does not hand back."""
    company = CompanyFactory(name="NY Inc", slug="ny", timezone="America/New_York")
    schedule = schedule_of(company)
    ann, bob, _ = people
    rotation(schedule, [ann, bob], start=date(2026, 10, 31), handoff=time(1, 30))
    assert on_call(schedule, utc(2026, 11, 1, 5, 29)) == ["Ann"]
    assert on_call(schedule, utc(2026, 11, 1, 5, 30)) == ["Bob"]
    assert on_call(schedule, utc(2026, 11, 1, 6, 15)) == ["Bob"]  # 01:15 EST, second time
    assert on_call(schedule, utc(2026, 11, 1, 6, 45)) == ["Bob"]  # 01:45 EST


def test_a_hand_off_in_the_skipped_hour_happens_after_the_jump(people):
    """29 March 2026 in London skips 01:00–02:00; a 01:30 hand-off happens at 02:30 BST."""
    company = CompanyFactory(name="London Ltd", slug="london", timezone="Europe/London")
    schedule = schedule_of(company)
    ann, bob, _ = people
    rotation(schedule, [ann, bob], start=date(2026, 3, 28), handoff=time(1, 30))
    assert on_call(schedule, utc(2026, 3, 29, 1, 29)) == ["Ann"]
    assert on_call(schedule, utc(2026, 3, 29, 1, 30)) == ["Bob"]


def test_weekly_rotation_hands_off_on_its_weekday(company_a, people):
    schedule = schedule_of(company_a)  # UTC
    ann, bob, cid = people
    # Start on a Wednesday: the first turn starts at the first Monday hand-off after it.
    rotation(
        schedule,
        [ann, bob, cid],
        frequency=Frequency.WEEKLY,
        weekday=0,
        handoff=time(10, 0),
        start=date(2026, 1, 7),
    )
    assert on_call(schedule, utc(2026, 1, 12, 9, 59)) == []
    assert on_call(schedule, utc(2026, 1, 12, 10, 0)) == ["Ann"]
    assert on_call(schedule, utc(2026, 1, 18, 23, 0)) == ["Ann"]
    assert on_call(schedule, utc(2026, 1, 19, 10, 0)) == ["Bob"]
    assert on_call(schedule, utc(2026, 2, 2, 10, 0)) == ["Ann"]
    handoff = next_handoff(loaded(schedule, utc(2026, 1, 14)), utc(2026, 1, 14))
    assert (handoff.at, names(handoff.users)) == (utc(2026, 1, 19, 10), ["Bob"])


def test_a_higher_layer_wins_during_its_hours(company_a, people):
    schedule = schedule_of(company_a)
    ann, bob, cid = people
    rotation(schedule, [ann], layer=0)
    rotation(schedule, [bob, cid], layer=1, active=(time(20, 0), time(8, 0)))
    assert on_call(schedule, utc(2026, 2, 2, 12, 0)) == ["Ann"]
    assert on_call(schedule, utc(2026, 2, 2, 20, 0)) == ["Bob"]
    assert on_call(schedule, utc(2026, 2, 3, 7, 59)) == ["Bob"]
    assert on_call(schedule, utc(2026, 2, 3, 8, 0)) == ["Ann"]
    handoff = next_handoff(loaded(schedule, utc(2026, 2, 2, 12)), utc(2026, 2, 2, 12))
    assert (handoff.at, names(handoff.users)) == (utc(2026, 2, 2, 20), ["Bob"])


def test_rotations_of_one_layer_add_up(company_a, people):
    schedule = schedule_of(company_a)
    ann, bob, _ = people
    rotation(schedule, [ann])
    rotation(schedule, [bob])
    assert sorted(on_call(schedule, utc(2026, 2, 2, 12))) == ["Ann", "Bob"]


def test_an_override_covers_its_period_over_every_layer(company_a, people):
    schedule = schedule_of(company_a)
    ann, bob, cid = people
    rotation(schedule, [ann], layer=0)
    rotation(schedule, [bob], layer=3)
    override(schedule, cid, utc(2026, 2, 3, 20), utc(2026, 2, 4, 8))  # Tuesday night
    assert on_call(schedule, utc(2026, 2, 3, 19, 59)) == ["Bob"]
    assert on_call(schedule, utc(2026, 2, 3, 20, 0)) == ["Cid"]
    assert on_call(schedule, utc(2026, 2, 4, 7, 59)) == ["Cid"]
    assert on_call(schedule, utc(2026, 2, 4, 8, 0)) == ["Bob"]
    handoff = next_handoff(loaded(schedule, utc(2026, 2, 3, 12)), utc(2026, 2, 3, 12))
    assert (handoff.at, names(handoff.users)) == (utc(2026, 2, 3, 20), ["Cid"])


def test_an_empty_schedule_has_nobody_and_no_hand_off(company_a):
    schedule = schedule_of(company_a)
    at = utc(2026, 2, 3)
    assert who_is_on_call(loaded(schedule, at), at) == []
    assert next_handoff(loaded(schedule, at), at) is None


ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata"]


@settings(max_examples=15, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    handoff=st.times().map(lambda t: t.replace(second=0, microsecond=0, fold=0)),
    start=st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 1, 1)),
    size=st.integers(min_value=1, max_value=3),
)
def test_daily_turns_follow_the_member_order_one_local_day_each(zone, handoff, start, size):
    """Over forty days of a daily rotation in any zone, every hand-off passes the turn to the
    next member, falls at the hand-off time on the local clock (or just after a jump that
    skipped it), and turns never last 0 or more than a day and an hour."""
    company = CompanyFactory(timezone=zone)
    users = [UserFactory(role=Role.TECHNICIAN, companies=[company]) for _ in range(size)]
    schedule = schedule_of(company)
    rotation(schedule, users, start=start, handoff=handoff)
    at = datetime.combine(start - timedelta(days=1), time(0), tzinfo=company.tz).astimezone(UTC)
    schedule = loaded(schedule, at)
    previous = None
    for _ in range(40):
        step = next_handoff(schedule, at)
        if size == 1 and previous is not None:
            assert step is None
            break
        assert step is not None
        local = step.at.astimezone(company.tz)
        assert local.time() in (
            handoff,
            (datetime.combine(date.min, handoff) + timedelta(hours=1)).time(),
        )
        if previous is not None:
            assert timedelta(hours=22) <= step.at - previous <= timedelta(hours=25)
            assert (
                users.index(step.users[0])
                == (users.index(who_is_on_call(schedule, at)[0]) + 1) % size
            )
        previous, at = step.at, step.at
