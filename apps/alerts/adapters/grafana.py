"""Grafana unified alerting webhook contact point.

Grafana posts the Alertmanager webhook shape (with ``version`` "1") plus ``orgId``,
``title``, ``state`` and ``message``, and per alert ``values``, ``silenceURL``,
``dashboardURL``, ``panelURL`` and ``imageURL``. Alerts are therefore mapped exactly as in
``alertmanager`` (per-alert status, ``alertname`` signature, asset label with fallbacks,
``severity`` label, ``fingerprint``, startsAt/endsAt), with tool source "Grafana". The
extra per-alert fields stay in ``raw``.

Detected by an ``alerts`` list together with ``orgId`` or ``version`` "1".
"""

from __future__ import annotations

from collections.abc import Mapping

from .alertmanager import parse_alert_group
from .base import AdapterOptions, ParseResult

TOOL_SOURCE = "Grafana"


def detect(payload: dict, headers: Mapping[str, str]) -> bool:
    return isinstance(payload.get("alerts"), list) and (
        "orgId" in payload or payload.get("version") == "1"
    )


def parse(payload: dict, *, headers: Mapping[str, str], options: AdapterOptions) -> ParseResult:
    return parse_alert_group(payload, options=options, tool_source=TOOL_SOURCE)
