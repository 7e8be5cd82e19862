"""What an alert shows of its source: links back to the tool, and the raw payload with its
secrets redacted (docs/decisions.md, "Links back to the source").

Links are built from what the tool sent, only when it is an http(s) URL (a ``javascript:``
link in a payload never becomes a link), per source: Alertmanager's ``generatorURL``
(Prometheus graph) and the silence form of the Alertmanager that sent it, prefilled with
the alert's labels; Grafana's ``panelURL``, ``dashboardURL``, ``silenceURL`` and
``generatorURL``; Datadog's ``link``/``event_url`` template fields and the monitor link in
the body; Zabbix's event page (``zabbix_url``, ``trigger_id``, ``event_id``); PagerDuty's
``client_url`` and ``links``; the CloudWatch alarm in the AWS console.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from apps.alerts.models import Alert

REDACTED = "[redacted]"
# Keys whose values are secrets (or grant access, as SNS's unsubscribe link does).
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|apikey|routing[_-]?key|auth|signature|"
    r"signingcert|credential|private[_-]?key|session|cookie|unsubscribe|subscribeurl",
    re.IGNORECASE,
)
_DATADOG_MONITOR = re.compile(r"https://[^\s/()\[\]]+/monitors/\d+[^\s()\[\]]*")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class SourceLink:
    label: str
    url: str


def alert_links(*, alert: Alert) -> list[SourceLink]:
    """The links back to the tool for ``alert``, most useful first, without duplicates."""
    raw = alert.raw if isinstance(alert.raw, dict) else {}
    builder = _BUILDERS.get(alert.source)
    candidates = builder(alert, raw) if builder else []
    links: list[SourceLink] = []
    for label, url in candidates:
        if _is_web_url(url) and all(link.url != url for link in links):
            links.append(SourceLink(label=label, url=url))
    return links


def redacted(value: Any) -> Any:
    """``value`` with the values of secret-looking keys replaced, and the credentials and
    secret query parameters of URLs removed."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and _SECRET_KEY.search(key) and item not in ("", None)
            else redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redacted(item) for item in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return _redacted_url(value)
    return value


def raw_pretty(*, alert: Alert) -> str:
    """The raw payload, redacted, as indented JSON (the template escapes it)."""
    return json.dumps(redacted(alert.raw), indent=2, ensure_ascii=False)


def _redacted_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    if netloc == parts.netloc and not any(_SECRET_KEY.search(name) for name, _ in query):
        return url
    query = [(name, REDACTED if _SECRET_KEY.search(name) else item) for name, item in query]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="[]")))


def _is_web_url(url: Any) -> bool:
    if not isinstance(url, str) or len(url) > 2000:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "@" not in parts.netloc


def _text(raw: dict, key: str) -> str:
    value = raw.get(key)
    return value if isinstance(value, str) else ""


def _alertmanager(alert: Alert, raw: dict) -> list[tuple[str, str]]:
    links = [("Prometheus graph", _text(raw, "generatorURL"))]
    external = _text(raw, "externalURL").rstrip("/")
    labels = raw.get("labels")
    if external and isinstance(labels, dict):
        matchers = ",".join(
            f'{name}="{_escaped(str(value))}"' for name, value in sorted(labels.items())
        )
        silence = f"{external}/#/silences/new?filter={quote('{' + matchers + '}')}"
        links.append(("Silence in Alertmanager", silence))
    return links


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _grafana(alert: Alert, raw: dict) -> list[tuple[str, str]]:
    return [
        ("Grafana panel", _text(raw, "panelURL")),
        ("Grafana dashboard", _text(raw, "dashboardURL")),
        ("Silence in Grafana", _text(raw, "silenceURL")),
        ("Grafana alert rule", _text(raw, "generatorURL")),
    ]


def _datadog(alert: Alert, raw: dict) -> list[tuple[str, str]]:
    monitor = _DATADOG_MONITOR.search(_text(raw, "body"))
    return [
        ("Datadog event", _text(raw, "link") or _text(raw, "event_url")),
        ("Datadog monitor", monitor.group() if monitor else ""),
    ]


def _zabbix(alert: Alert, raw: dict) -> list[tuple[str, str]]:
    base = _text(raw, "zabbix_url").rstrip("/")
    trigger_id, event_id = _text(raw, "trigger_id"), _text(raw, "event_id")
    if not (base and _DIGITS.fullmatch(trigger_id) and _DIGITS.fullmatch(event_id)):
        return []
    return [("Zabbix event", f"{base}/tr_events.php?triggerid={trigger_id}&eventid={event_id}")]


def _pagerduty(alert: Alert, raw: dict) -> list[tuple[str, str]]:
    links = [(_text(raw, "client") or "Sending tool", _text(raw, "client_url"))]
    for item in raw.get("links") or []:
        if isinstance(item, dict):
            href = _text(item, "href")
            links.append((_text(item, "text") or href, href))
    return links


def _sns(alert: Alert, raw: dict) -> list[tuple[str, str]]:
    region = alert.labels.get("region", "") if isinstance(alert.labels, dict) else ""
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
        return []
    url = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#alarmsV2:alarm/{quote(alert.signature, safe='')}"
    )
    return [("CloudWatch alarm", url)]


_BUILDERS = {
    "alertmanager": _alertmanager,
    "grafana": _grafana,
    "datadog": _datadog,
    "zabbix": _zabbix,
    "pagerduty": _pagerduty,
    "sns": _sns,
}
