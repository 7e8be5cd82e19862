"""Trend charts as inline SVG: this module computes the geometry (in a fixed viewBox that
CSS scales to the card), ``templates/kpis/partials/_chart.html`` draws it.

A chart has a plot area with horizontal grid lines labelled on the left, day labels along
the bottom, and bars and/or lines with a dot per day (each with a tooltip). A chart with
nothing to draw is None, and the page says "No data for this period" instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from apps.kpis.selectors import NOISE_REDUCTION, SELF_HEALED, DayPoint, totals_of

WIDTH = 720
HEIGHT = 250
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 12, 30
MAX_X_LABELS = 7
COUNT_STEPS = 4
PERCENT_STEP = 20


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Series:
    """One legend entry: bars, or lines (one polyline per run of days with a value) with
    a dot per value. ``css`` names its colour in kpis.css."""

    name: str
    css: str
    bars: list[Bar]
    lines: list[str]
    dots: list[Dot]

    @property
    def is_bars(self) -> bool:
        return bool(self.bars)


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    desc: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    series: list[Series]
    dot_radius: float
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM

    @property
    def label_x(self) -> int:
        """Where the value labels end, left of the plot."""
        return self.plot_left - 6

    @property
    def label_y(self) -> int:
        """The baseline of the day labels, below the plot."""
        return self.plot_bottom + 18


@dataclass(frozen=True)
class _Frame:
    """Maps day index and value to coordinates in the plot area."""

    days: int
    low: float
    high: float

    @property
    def band(self) -> float:
        return (WIDTH - LEFT - RIGHT) / self.days

    def x(self, index: int) -> float:
        return round(LEFT + (index + 0.5) * self.band, 2)

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return round(TOP + (1 - share) * (HEIGHT - TOP - BOTTOM), 2)


def _count_scale(peak: int) -> tuple[int, int]:
    """A round top above ``peak`` and a step giving about four grid lines (1, 2, 5 × 10ⁿ)."""
    raw = peak / COUNT_STEPS
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(1, next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))
    step = int(step)
    return math.ceil(peak / step) * step, step


def _day_label(day: date, *, with_year: bool) -> str:
    return f"{day:%b} {day.day}" + (f" {day:%Y}" if with_year else "")


def _x_ticks(days: Sequence[date], frame: _Frame) -> list[Tick]:
    every = math.ceil(len(days) / MAX_X_LABELS)
    with_year = days[0].year != days[-1].year
    return [
        Tick(frame.x(i), _day_label(day, with_year=with_year))
        for i, day in enumerate(days)
        if i % every == 0
    ]


def _dot_radius(days: int) -> float:
    return 3.0 if days <= 31 else 2.0 if days <= 92 else 1.2


def _line(
    name: str,
    css: str,
    values: Sequence[float | None],
    frame: _Frame,
    days: Sequence[date],
    describe: Callable[[date, float], str],
) -> Series:
    """A line through the days that have a value, broken where a day has none."""
    lines: list[str] = []
    run: list[str] = []
    dots = []
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        if value is None:
            if run:
                lines.append(" ".join(run))
            run = []
            continue
        x, y = frame.x(i), frame.y(value)
        run.append(f"{x},{y}")
        dots.append(Dot(x, y, describe(day, value)))
    if run:
        lines.append(" ".join(run))
    return Series(name=name, css=css, bars=[], lines=lines, dots=dots)


def _period_text(days: Sequence[DayPoint]) -> str:
    first, last = days[0].day, days[-1].day
    return f"on {first:%Y-%m-%d}" if first == last else f"from {first:%Y-%m-%d} to {last:%Y-%m-%d}"


def volume_chart(days: Sequence[DayPoint]) -> Chart | None:
    """Firing alerts (bars) and incidents (line) per day; None without either."""
    peak = max((max(d.alerts, d.incidents) for d in days), default=0)
    if not peak:
        return None
    top, step = _count_scale(peak)
    frame = _Frame(days=len(days), low=0, high=top)
    dates = [d.day for d in days]
    bar_width = round(frame.band * (0.7 if len(days) <= 60 else 0.9), 2)
    bars = [
        Bar(
            x=round(frame.x(i) - bar_width / 2, 2),
            y=frame.y(d.alerts),
            width=bar_width,
            height=round(frame.y(0) - frame.y(d.alerts), 2),
            label=f"{d.day:%Y-%m-%d}: {d.alerts:,} alerts",
        )
        for i, d in enumerate(days)
        if d.alerts
    ]
    incidents = _line(
        "Incidents",
        "series-incidents",
        [d.incidents for d in days],
        frame,
        dates,
        lambda day, n: f"{day:%Y-%m-%d}: {n:,.0f} incidents",
    )
    totals = totals_of(days)
    busiest = max(days, key=lambda d: d.alerts)
    desc = (
        f"Firing alerts (bars) and incidents (line) per day {_period_text(days)}: "
        f"{totals.alerts:,} alerts and {totals.incidents:,} incidents in all."
    )
    if busiest.alerts:
        desc += f" The busiest day was {busiest.day:%Y-%m-%d} with {busiest.alerts:,} alerts."
    return Chart(
        id="kpi-volume",
        title="Alerts and incidents per day",
        desc=desc,
        y_ticks=[Tick(frame.y(v), f"{v:,}") for v in range(0, top + 1, step)],
        x_ticks=_x_ticks(dates, frame),
        series=[
            Series(name="Firing alerts", css="series-alerts", bars=bars, lines=[], dots=[]),
            incidents,
        ],
        dot_radius=_dot_radius(len(days)),
    )


def _rate_text(name: str, value: float | None, excellent: float) -> str:
    if value is None:
        return f"{name}: no data"
    return f"{name} {value:.1f}% over the period (excellent from {excellent:g}%)"


def rate_chart(days: Sequence[DayPoint]) -> Chart | None:
    """Noise reduction and self-healed share per day, in %; None when no day has either
    (a day without alerts, or without incidents, leaves a gap in its line)."""
    noise = [d.noise_reduction for d in days]
    healed = [d.self_healed_pct for d in days]
    values = [v for v in (*noise, *healed) if v is not None]
    if not values:
        return None
    low = min(0, math.floor(min(values) / PERCENT_STEP) * PERCENT_STEP)
    frame = _Frame(days=len(days), low=low, high=100)
    dates = [d.day for d in days]
    totals = totals_of(days)
    desc = (
        f"Daily noise reduction and share of incidents self-healed, in percent, "
        f"{_period_text(days)}. "
        f"{_rate_text('Noise reduction', totals.noise_reduction, NOISE_REDUCTION.excellent)}; "
        f"{_rate_text('self-healed', totals.self_healed_pct, SELF_HEALED.excellent)}."
    )
    return Chart(
        id="kpi-rates",
        title="Noise reduction and self-healed % per day",
        desc=desc,
        y_ticks=[Tick(frame.y(v), f"{v}%") for v in range(low, 101, PERCENT_STEP)],
        x_ticks=_x_ticks(dates, frame),
        series=[
            _line(
                "Noise reduction",
                "series-noise",
                noise,
                frame,
                dates,
                lambda day, v: f"{day:%Y-%m-%d}: {v:.1f}% noise reduction",
            ),
            _line(
                "Self-healed",
                "series-healed",
                healed,
                frame,
                dates,
                lambda day, v: f"{day:%Y-%m-%d}: {v:.1f}% self-healed",
            ),
        ],
        dot_radius=_dot_radius(len(days)),
    )
