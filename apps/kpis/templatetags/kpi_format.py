"""How the KPI page writes its figures: "No data" where a figure has no denominator."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()

NO_DATA = "No data"


@register.filter
def pct(value: float | None) -> str:
    """65.0%; "No data" for None."""
    return NO_DATA if value is None else f"{value:.1f}%"


@register.filter
def minutes(value: timedelta | None) -> str:
    """45.0 min (with hours past two of them: 150.0 min (2.5 h)); "No data" for None."""
    if value is None:
        return NO_DATA
    total = value.total_seconds() / 60
    text = f"{total:,.1f} min"
    if abs(total) >= 120:
        text += f" ({total / 60:,.1f} h)"
    return text


@register.filter
def count(value: int) -> str:
    """1,000,000: counts grouped by thousands."""
    return f"{value:,}"
