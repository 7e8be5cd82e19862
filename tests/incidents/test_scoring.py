"""The priority score formula of the product guide, term by term."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.incidents.scoring import priority_breakdown, priority_score

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def score(**overrides) -> int:
    args = {
        "severity": "critical",
        "asset_critical": False,
        "alert_count": 1,
        "tool_count": 1,
        "first_alert_at": NOW,
        "now": NOW,
    }
    args.update(overrides)
    return priority_score(**args)


def test_worked_example_of_the_guide_is_128():
    breakdown = priority_breakdown(
        severity="critical",
        asset_critical=True,
        alert_count=6,
        tool_count=2,
        first_alert_at=NOW - timedelta(hours=2),
        now=NOW,
    )
    assert (breakdown.severity, breakdown.critical_asset, breakdown.duplicates) == (90, 20, 10)
    assert (breakdown.multi_tool, breakdown.age_decay, breakdown.total) == (10, 2, 128)


@pytest.mark.parametrize(
    ("severity", "base"), [("critical", 90), ("high", 60), ("medium", 30), ("low", 10)]
)
def test_severity_base(severity, base):
    assert score(severity=severity) == base


@pytest.mark.parametrize(("alerts", "points"), [(1, 0), (2, 2), (6, 10), (11, 20), (500, 20)])
def test_two_points_per_duplicate_capped_at_twenty(alerts, points):
    assert score(alert_count=alerts) == 90 + points


def test_critical_asset_and_multi_tool_bonuses():
    assert score(asset_critical=True) == 110
    assert score(tool_count=2) == 100
    assert score(tool_count=3) == 100


@pytest.mark.parametrize(
    ("age", "decay"),
    [
        (timedelta(minutes=59), 0),
        (timedelta(hours=1), 1),
        (timedelta(hours=9, minutes=59), 9),
        (timedelta(days=3), 10),
    ],
)
def test_one_point_per_full_hour_capped_at_ten(age, decay):
    assert score(first_alert_at=NOW - age) == 90 - decay


def test_first_alert_in_the_future_does_not_add_points():
    assert score(first_alert_at=NOW + timedelta(hours=2)) == 90
