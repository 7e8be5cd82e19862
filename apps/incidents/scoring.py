"""The product guide's priority score, with the points each term contributes.

score = severity base (critical 90, high 60, medium 30, low 10)
      + 20 if the asset is critical
      + 2 per duplicate alert (alert count − 1), at most 20
      + 10 if two or more tools reported it
      − 1 per full hour since the first alert, at most 10
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SEVERITY_BASE = {"critical": 90, "high": 60, "medium": 30, "low": 10}
CRITICAL_ASSET_BONUS = 20
POINTS_PER_DUPLICATE = 2
MAX_DUPLICATE_POINTS = 20
MULTI_TOOL_BONUS = 10
MAX_AGE_DECAY = 10


@dataclass(frozen=True, slots=True)
class ScoreBreakdown:
    severity: int
    critical_asset: int
    duplicates: int
    multi_tool: int
    age_decay: int

    @property
    def total(self) -> int:
        return (
            self.severity + self.critical_asset + self.duplicates + self.multi_tool - self.age_decay
        )


def priority_breakdown(
    *,
    severity: str,
    asset_critical: bool,
    alert_count: int,
    tool_count: int,
    first_alert_at: datetime,
    now: datetime,
) -> ScoreBreakdown:
    hours = max(0, int((now - first_alert_at).total_seconds() // 3600))
    return ScoreBreakdown(
        severity=SEVERITY_BASE[severity],
        critical_asset=CRITICAL_ASSET_BONUS if asset_critical else 0,
        duplicates=min(POINTS_PER_DUPLICATE * max(alert_count - 1, 0), MAX_DUPLICATE_POINTS),
        multi_tool=MULTI_TOOL_BONUS if tool_count >= 2 else 0,
        age_decay=min(hours, MAX_AGE_DECAY),
    )


def priority_score(**kwargs) -> int:
    return priority_breakdown(**kwargs).total
