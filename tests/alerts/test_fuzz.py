"""Fuzzing the webhook (issue 15): bodies generated from every adapter's real payloads, with
the poison of every known class mixed in, go through the real webhook view. Never a 5xx;
every alert a 2xx names is stored; the correlation sweep that follows never raises and
leaves no alert neither correlated nor quarantined.

Profiles: "ci" (the default: derandomized, a few hundred requests in all, well under a
minute) and "deep" (HYPOTHESIS_PROFILE=deep: ten times as many, random). Each test prints
its figures (requests tried, 5xx, lost alerts, stuck alerts) with ``-s``.
"""

import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.alerts.models import Alert
from apps.incidents.correlation import correlate_companies
from tests.alerts.conftest import WEBHOOK, generic
from tests.alerts.test_sns_signature import alarm_envelope, seed_certificate, signed

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    max_examples=600,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def fixture_body(path: str) -> dict:
    data = json.loads((FIXTURES / path).read_text())
    return data.get("body", data)


def _recent(body: Any) -> Any:
    """Fixtures carry the dates they were captured on: move them to now, so that the
    bounds of ingest are not what every example tests."""
    now = datetime.now(UTC).isoformat()
    if isinstance(body, dict):
        return {
            k: now if k in ("startsAt", "StateChangeTime") else _recent(v) for k, v in body.items()
        }
    if isinstance(body, list):
        return [_recent(v) for v in body]
    return body


BASES = {
    "generic": generic(timestamp=datetime.now(UTC).isoformat(), labels={"env": "prod"}),
    "alertmanager": _recent(fixture_body("alertmanager/alertmanager_group_firing_2_alerts.json")),
    "grafana": _recent(fixture_body("documented/grafana_webhook_firing.json")),
    "datadog": fixture_body("documented/datadog_webhook_default_triggered.json"),
    "zabbix": fixture_body("documented/zabbix_webhook_problem.json"),
}
# Raw JSON text that no json.dumps produces: the number classes that broke the webhook.
RAW_POISON = [
    "1e400",
    "-1e400",
    "9" * 4301,
    "-" + "9" * 5000,
    "1e-400",
    "[" * 1000 + "]" * 1000,
    "[" * 65 + "]" * 65,
    '{"a":' * 200 + "1" + "}" * 200,
    '["]", ' * 900 + "1" + ', "["]' * 900,
]
POISON_MARK = "\x1fpoison\x1f"
POISON_DATES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
    "1970-01-01T00:00:00Z",
    -62135596801,
    253402300800,
    10**20,
    "2026-02-30T00:00:00Z",
    "",
]
SPECIAL_CHARACTERS = ["\x00", "\ud800", "\udfff", "\ufffd", "\U0001f525", "\\"]

texts = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(SPECIAL_CHARACTERS)), max_size=12
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    st.sampled_from(POISON_DATES),
    st.just(POISON_MARK),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _replaced(node: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _replaced(node[head], rest, value) if rest else value
    return copy


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one to three values replaced or keys added, anywhere in it."""
    body = base
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(body)
        path = draw(st.sampled_from(paths[1:] or paths))
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            path = (*path[:-1], draw(texts))
        body = _replaced(body, path, draw(values))
    return body


def to_text(body: Any, data: st.DataObject) -> str:
    text = json.dumps(body)
    while POISON_MARK in text or json.dumps(POISON_MARK) in text:
        text = text.replace(json.dumps(POISON_MARK), data.draw(st.sampled_from(RAW_POISON)), 1)
    return text


class Figures:
    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: Counter = Counter()

    def report(self) -> None:
        c = self.counts
        print(
            f"\nfuzz {self.name}: {c['tried']} requests, {c['2xx']} 2xx, {c['4xx']} 4xx, "
            f"{c['5xx']} 5xx, {c['lost']} lost, {c['stuck']} stuck"
        )


def check(tenant, response, figures: Figures) -> None:
    """Never a 5xx; every alert a 2xx names is stored; after a sweep, none is stuck."""
    figures.counts["tried"] += 1
    status = response.status_code
    figures.counts[f"{status // 100}xx"] += 1
    assert status < 500, response.content
    if status < 300:
        ids = response.json()["alert_ids"]
        stored = Alert.objects.filter(pk__in=ids, company=tenant.company).count()
        figures.counts["lost"] += len(ids) - stored
        assert stored == len(ids)
    correlate_companies(company_ids=[tenant.company.pk])
    stuck = Alert.objects.filter(
        company=tenant.company, correlated_at__isnull=True, quarantined_at__isnull=True
    ).count()
    figures.counts["stuck"] += stuck
    assert not stuck


@pytest.fixture
def fuzz_tenant(tenant):
    tenant.company.rate_limit_per_minute = 10**6
    tenant.company.rate_limit_burst = 10**6
    tenant.company.save()
    tenant.client.raise_request_exception = False
    return tenant


@pytest.mark.parametrize("source", sorted(BASES))
def test_fuzzed_bodies_of_every_source(fuzz_tenant, source, capsys):
    figures = Figures(source)

    @settings(settings.get_profile(PROFILE))
    @given(data=st.data(), delivery=st.one_of(st.none(), texts), named=st.booleans())
    def run(data, delivery, named):
        body = data.draw(mutated(BASES[source]))
        path = f"{WEBHOOK}/{source}" if named else WEBHOOK
        headers = {} if delivery is None else {"X-Delivery-ID": delivery}
        response = fuzz_tenant.post(to_text(body, data).encode(), path=path, **headers)
        check(fuzz_tenant, response, figures)

    run()
    with capsys.disabled():
        figures.report()


def test_fuzzed_cloudwatch_alarms_through_sns(fuzz_tenant, capsys):
    """The alarm is a JSON string inside the signed envelope: fuzz it there."""
    seed_certificate()
    figures = Figures("sns")
    alarm = json.loads(alarm_envelope(StateChangeTime=datetime.now(UTC).isoformat())["Message"])

    @settings(settings.get_profile(PROFILE))
    @given(data=st.data())
    def run(data):
        message = to_text(data.draw(mutated(alarm)), data)
        envelope = signed({**alarm_envelope(), "Message": message})
        response = fuzz_tenant.post(
            json.dumps(envelope).encode(),
            path=f"{WEBHOOK}/cloudwatch",
            content_type="text/plain; charset=UTF-8",
            **{"x-amz-sns-message-type": "Notification"},
        )
        check(fuzz_tenant, response, figures)

    run()
    with capsys.disabled():
        figures.report()


def test_every_known_poison_class_is_a_4xx_or_stored(fuzz_tenant):
    """The classes of the issue, each at least once whatever hypothesis draws."""
    figures = Figures("known")
    base = json.dumps(generic())
    for raw in RAW_POISON:
        check(fuzz_tenant, fuzz_tenant.post((base[:-1] + f', "x": {raw}}}').encode()), figures)
    for date in POISON_DATES:
        check(fuzz_tenant, fuzz_tenant.post(generic(timestamp=date)), figures)
    for character in SPECIAL_CHARACTERS:
        body = generic(message=character, labels={character: character})
        check(fuzz_tenant, fuzz_tenant.post(json.dumps(body).encode()), figures)
        check(fuzz_tenant, fuzz_tenant.post(generic(), **{"X-Delivery-ID": character}), figures)
    assert figures.counts["5xx"] == 0


def test_a_year_one_alert_in_a_live_incident_is_clamped_and_correlation_goes_on(fuzz_tenant):
    """The reported case: a key with an incident, then an alert of year one."""
    now = datetime.now(UTC)
    assert fuzz_tenant.post(generic(timestamp=now.isoformat())).status_code == 202
    correlate_companies(company_ids=[fuzz_tenant.company.pk])
    assert fuzz_tenant.post(generic(timestamp="0001-01-01T00:00:00Z")).status_code == 202
    correlate_companies(company_ids=[fuzz_tenant.company.pk])
    alerts = Alert.objects.filter(company=fuzz_tenant.company)
    assert all(a.correlated_at and a.event_time > now - timedelta(minutes=1) for a in alerts)
    assert len({a.incident_id for a in alerts}) == 1
