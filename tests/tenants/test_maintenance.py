"""Maintenance windows: weekly windows across midnight, in the company's time zone."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from apps.tenants.choices import Weekday, WindowKind
from apps.tenants.models import MaintenanceWindow
from apps.tenants.services import companies_in_maintenance
from tests.factories import CompanyFactory, MaintenanceWindowFactory

NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def saturday_night(tz=NY) -> MaintenanceWindow:
    return MaintenanceWindow(
        kind=WindowKind.WEEKLY,
        weekday=Weekday.SATURDAY,
        start_time=time(22, 0),
        end_time=time(2, 0),
    )


@pytest.mark.parametrize(
    ("local", "inside"),
    [
        (datetime(2026, 11, 21, 21, 59), False),  # Saturday, one minute before
        (datetime(2026, 11, 21, 22, 0), True),  # Saturday 22:00 sharp
        (datetime(2026, 11, 21, 23, 30), True),
        (datetime(2026, 11, 22, 0, 0), True),  # Sunday, midnight crossed
        (datetime(2026, 11, 22, 1, 59), True),
        (datetime(2026, 11, 22, 2, 0), False),  # the end is exclusive
        (datetime(2026, 11, 20, 23, 0), False),  # Friday night
        (datetime(2026, 11, 23, 1, 0), False),  # Monday early: not the day after Saturday
    ],
)
def test_weekly_window_across_midnight(local, inside):
    at = local.replace(tzinfo=NY).astimezone(UTC)
    assert saturday_night().is_active(at, NY) is inside


def test_the_same_instant_depends_on_the_company_time_zone():
    at = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)  # Sat 23:00 in New York, Sun 13:00 in Tokyo
    window = saturday_night()
    assert window.is_active(at, NY) is True
    assert window.is_active(at, TOKYO) is False


def test_window_keeps_local_time_across_daylight_saving_change():
    # New York leaves DST on Sunday 2026-11-01; the window still starts at 22:00 local.
    before = datetime(2026, 10, 31, 22, 30, tzinfo=NY).astimezone(UTC)
    after = datetime(2026, 11, 7, 22, 30, tzinfo=NY).astimezone(UTC)
    assert before.hour != after.hour  # the UTC hour moved with the offset
    window = saturday_night()
    assert window.is_active(before, NY)
    assert window.is_active(after, NY)


def test_same_day_weekly_window():
    window = MaintenanceWindow(
        kind=WindowKind.WEEKLY, weekday=Weekday.TUESDAY, start_time=time(9), end_time=time(11)
    )
    tue = datetime(2026, 11, 24, 10, 0, tzinfo=NY)
    assert window.is_active(tue, NY)
    assert not window.is_active(tue.replace(hour=11), NY)
    assert not window.is_active(datetime(2026, 11, 25, 10, 0, tzinfo=NY), NY)


def test_one_off_window():
    start = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    window = MaintenanceWindow(
        kind=WindowKind.ONE_OFF, starts_at=start, ends_at=start.replace(hour=23)
    )
    assert window.is_active(start, NY)
    assert window.is_active(start.replace(hour=22, minute=59), NY)
    assert not window.is_active(start.replace(hour=23), NY)
    assert not window.is_active(start.replace(hour=19, minute=59), NY)


@pytest.mark.django_db
def test_companies_in_maintenance_use_their_windows_and_time_zones(django_assert_num_queries):
    """One query for any number of companies; each window in its own company's zone."""
    new_york = CompanyFactory(timezone="America/New_York")
    MaintenanceWindowFactory(
        company=new_york, weekday=Weekday.SATURDAY, start_time=time(22), end_time=time(2)
    )
    tokyo = CompanyFactory(timezone="Asia/Tokyo")
    MaintenanceWindowFactory(
        company=tokyo, weekday=Weekday.SUNDAY, start_time=time(12), end_time=time(14)
    )
    other = CompanyFactory(timezone="America/New_York")
    companies = [new_york, tokyo, other]
    # Sunday 04:00 UTC: Saturday 23:00 in New York, Sunday 13:00 in Tokyo.
    with django_assert_num_queries(1):
        paused = companies_in_maintenance(
            companies=companies, at=datetime(2026, 11, 22, 4, tzinfo=UTC)
        )
    assert paused == {new_york.pk, tokyo.pk}
    later = companies_in_maintenance(companies=companies, at=datetime(2026, 11, 22, 8, tzinfo=UTC))
    assert later == set()


@pytest.mark.parametrize(
    ("fields", "field_in_error"),
    [
        ({"kind": WindowKind.WEEKLY, "start_time": time(1), "end_time": time(2)}, "weekday"),
        (
            {"kind": WindowKind.WEEKLY, "weekday": 1, "start_time": time(1), "end_time": time(1)},
            "end_time",
        ),
        (
            {
                "kind": WindowKind.ONE_OFF,
                "starts_at": datetime(2026, 1, 2, tzinfo=UTC),
                "ends_at": datetime(2026, 1, 1, tzinfo=UTC),
            },
            "ends_at",
        ),
        ({"kind": WindowKind.ONE_OFF}, "starts_at"),
    ],
)
def test_window_validation_names_the_field(fields, field_in_error):
    with pytest.raises(ValidationError) as exc:
        MaintenanceWindow(**fields).clean()
    assert field_in_error in exc.value.message_dict
