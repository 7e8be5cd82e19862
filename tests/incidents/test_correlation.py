"""Correlation rules: window on event time, key template, min alerts, auto-correlate off,
resolution, maintenance windows, tenants never meet, assignment."""

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.roles import Role
from apps.alerts.adapters import NormalizedAlert
from apps.alerts.models import Alert
from apps.alerts.services import alerts_ingest
from apps.audit.models import AuditLog
from apps.incidents.correlation import correlate_companies, correlate_company
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import incidents_auto_assign, incidents_rescore
from apps.incidents.tasks import after_correlation
from tests.factories import AssetFactory, CompanyFactory, MaintenanceWindowFactory, UserFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def alert(**changes) -> NormalizedAlert:
    values = {
        "asset_name": "srv-app-01",
        "signature": "disk_full",
        "severity": "critical",
        "message": "disk full",
        "tool_source": "Datadog",
        "status": "firing",
        "fingerprint": "",
        "event_time": T0,
        "labels": {},
        "raw": {},
    }
    values.update(changes)
    return NormalizedAlert(**values)


def ingest(company, *alerts, delivery_id="", received_at=T0 + timedelta(days=1)):
    """Store alerts as the webhook does; received a day after T0 by default, so that T0's
    event times stay within the bounds of ingest whatever the date of the run."""
    return alerts_ingest(
        company=company,
        alerts=list(alerts),
        source="generic",
        delivery_id=delivery_id,
        received_at=received_at,
    )


def sweep(company):
    result = correlate_company(company_id=company.pk)
    after_correlation({company.pk: result})
    return result


@pytest.fixture
def company():
    return CompanyFactory(name="Acme", slug="acme")


def test_the_guide_example_three_alerts_one_incident(company):
    ingest(company, *(alert(event_time=T0 + timedelta(minutes=m)) for m in (0, 2, 5)))
    sweep(company)
    incident = Incident.objects.get()
    assert incident.alert_count == 3
    assert incident.title == "disk_full on srv-app-01"
    assert incident.first_alert_at == T0 and incident.last_alert_at == T0 + timedelta(minutes=5)
    assert set(Alert.objects.values_list("incident", flat=True)) == {incident.pk}
    assert not Alert.objects.filter(correlated_at__isnull=True).exists()


def test_window_is_measured_from_the_latest_alert_on_event_time(company):
    times = [T0, T0 + timedelta(minutes=14), T0 + timedelta(minutes=28), T0 + timedelta(minutes=44)]
    ingest(company, *(alert(event_time=t) for t in times))
    sweep(company)
    first, second = Incident.objects.order_by("first_alert_at")
    assert first.alert_count == 3  # 0, 14 and 28: each within 15 min of the previous
    assert second.alert_count == 1  # 44 is 16 min after 28


def test_window_uses_event_time_not_arrival_order(company):
    ingest(company, alert(event_time=T0 + timedelta(minutes=20)))
    sweep(company)
    ingest(company, alert(event_time=T0 + timedelta(minutes=10)))  # late arrival, older event
    sweep(company)
    assert Incident.objects.get().alert_count == 2


def test_company_window_setting_is_used(company):
    company.correlation_window_minutes = 5
    company.save()
    ingest(company, alert(event_time=T0), alert(event_time=T0 + timedelta(minutes=6)))
    sweep(company)
    assert Incident.objects.count() == 2


def test_different_keys_make_different_incidents(company):
    ingest(
        company,
        alert(),
        alert(asset_name="srv-db-01"),
        alert(signature="cpu_high"),
        alert(tool_source="Zabbix"),
    )
    sweep(company)
    counts = dict(Incident.objects.values_list("key", "alert_count"))
    assert counts == {"srv-app-01|disk_full": 2, "srv-db-01|disk_full": 1, "srv-app-01|cpu_high": 1}
    incident = Incident.objects.get(key="srv-app-01|disk_full")
    assert incident.tool_sources == ["Datadog", "Zabbix"]


def test_key_template_with_tool(company):
    company.aggregation_key = "asset|signature|tool"
    company.save()
    ingest(company, alert(), alert(tool_source="Zabbix"))
    sweep(company)
    assert Incident.objects.count() == 2


def test_incident_severity_is_the_highest_and_score_follows(company):
    AssetFactory(company=company, name="srv-app-01", is_critical=True)
    ingest(company, alert(severity="medium"), alert(severity="high", tool_source="Zabbix"))
    sweep(company)
    incident = Incident.objects.get()
    assert incident.severity == "high"
    assert incident.asset.name == "srv-app-01"
    now = timezone.now()
    hours = min(int((now - T0).total_seconds() // 3600), 10)
    assert incident.priority_score == 60 + 20 + 2 + 10 - hours
    assert set(Alert.objects.values_list("asset__name", flat=True)) == {"srv-app-01"}


def test_auto_correlate_off_opens_one_incident_per_alert(company):
    company.auto_correlate = False
    company.save()
    ingest(company, alert(), alert(), alert())
    sweep(company)
    assert Incident.objects.count() == 3
    assert set(Incident.objects.values_list("alert_count", flat=True)) == {1}


def test_min_alerts_keeps_incident_pending_until_reached(company):
    company.min_alerts = 3
    company.save()
    UserFactory(role="Technician", companies=[company])
    ingest(company, alert(), alert())
    sweep(company)
    incident = Incident.objects.get()
    assert incident.visible is False and incident.assigned_to is None
    ingest(company, alert(event_time=T0 + timedelta(minutes=1)))
    result = sweep(company)
    incident.refresh_from_db()
    assert incident.visible is True and incident.alert_count == 3
    assert result.became_visible == [incident.pk]
    assert incident.assigned_to is not None


def test_resolved_alert_closes_firing_alert_and_resolves_incident(company):
    ingest(
        company,
        alert(fingerprint="fp-1"),
        alert(fingerprint="fp-2", event_time=T0 + timedelta(minutes=1)),
    )
    sweep(company)
    incident = Incident.objects.get()
    assert incident.open_alert_count == 2
    ingest(
        company, alert(fingerprint="fp-1", status="resolved", event_time=T0 + timedelta(minutes=3))
    )
    sweep(company)
    incident.refresh_from_db()
    assert incident.status == "new" and incident.open_alert_count == 1
    assert Alert.objects.get(fingerprint="fp-1", status="firing").resolved_at == T0 + timedelta(
        minutes=3
    )
    ingest(
        company, alert(fingerprint="fp-2", status="resolved", event_time=T0 + timedelta(minutes=4))
    )
    sweep(company)
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.resolution == "source"
    assert incident.resolved_at == T0 + timedelta(minutes=4)
    assert incident.alert_count == 2  # resolutions are not duplicates
    assert list(incident.events.values_list("kind", flat=True)) == ["resolved_by_source"]
    assert Alert.objects.filter(status="resolved", incident=incident).count() == 2


def test_firing_and_resolved_in_one_batch(company):
    ingest(
        company,
        alert(fingerprint="fp"),
        alert(fingerprint="fp", status="resolved", event_time=T0 + timedelta(minutes=1)),
    )
    sweep(company)
    incident = Incident.objects.get()
    assert incident.status == "resolved"
    assert Alert.objects.get(status="firing").resolved_at == T0 + timedelta(minutes=1)


def test_alert_after_resolution_opens_a_new_incident_past_the_window(company):
    ingest(
        company,
        alert(fingerprint="fp"),
        alert(fingerprint="fp", status="resolved", event_time=T0 + timedelta(minutes=1)),
        alert(fingerprint="fp", event_time=T0 + timedelta(minutes=17)),
    )
    sweep(company)
    resolved, reopened = Incident.objects.order_by("first_alert_at")
    assert resolved.status == "resolved"
    assert reopened.status == "new" and reopened.accepting


def test_resolution_for_an_unknown_alert_is_stored_without_incident(company):
    ingest(company, alert(fingerprint="ghost", status="resolved"))
    sweep(company)
    stored = Alert.objects.get()
    assert stored.incident is None and stored.correlated_at is not None
    assert not Incident.objects.exists()


def test_generic_alerts_without_fingerprint_resolve_by_asset_signature_and_tool(company):
    ingest(company, alert())
    sweep(company)
    ingest(company, alert(status="resolved", event_time=T0 + timedelta(minutes=1)))
    sweep(company)
    assert Incident.objects.get().status == "resolved"


def test_maintenance_window_marks_incident_and_skips_assignment(company):
    company.timezone = "UTC"
    company.save()
    UserFactory(role="Technician", companies=[company])
    MaintenanceWindowFactory(
        company=company, weekday=T0.weekday(), start_time=time(9), end_time=time(11)
    )
    ingest(company, alert(), alert(signature="cpu", event_time=T0 + timedelta(hours=2)))
    sweep(company)
    during = Incident.objects.get(signature="disk_full")
    after = Incident.objects.get(signature="cpu")
    assert during.in_maintenance is True and during.assigned_to is None
    assert after.in_maintenance is False and after.assigned_to is not None


def test_companies_never_share_incidents(company):
    other = CompanyFactory()
    ingest(company, alert())
    ingest(other, alert())
    sweep(company)
    sweep(other)
    assert Incident.objects.count() == 2
    for c in (company, other):
        incident = Incident.objects.get(company=c)
        assert list(Alert.objects.filter(incident=incident).values_list("company", flat=True)) == [
            c.pk
        ]


def test_assignment_goes_to_the_on_call_technician_with_fewest_open_incidents(company):
    busy = UserFactory(role="Technician", companies=[company])
    free = UserFactory(role="Technician", companies=[company])
    off_call = UserFactory(role="Technician", companies=[company])
    off_call.memberships.update(on_call=False)
    UserFactory(role="Company Admin", companies=[company])
    UserFactory(role="Technician", companies=[CompanyFactory()])
    ingest(company, alert(signature="a"))
    sweep(company)
    first = Incident.objects.get(signature="a")
    assert first.assigned_to == busy  # all at zero: the longest-standing account
    ingest(company, alert(signature="b"), alert(signature="c"))
    sweep(company)
    assert Incident.objects.get(signature="b").assigned_to == free
    assert Incident.objects.get(signature="c").assigned_to in (busy, free)
    assert not Incident.objects.filter(assigned_to=off_call).exists()
    log = AuditLog.objects.filter(action="incident_assigned").first()
    assert log.details["automatic"] is True and log.company_id == company.pk


def test_no_technician_leaves_incident_unassigned(company):
    ingest(company, alert())
    sweep(company)
    assert Incident.objects.get().assigned_to is None


def test_rescore_applies_age_decay():
    company = CompanyFactory()
    now = timezone.now()
    ingest(company, alert(event_time=now), received_at=now)
    sweep(company)
    incident = Incident.objects.get()
    assert incident.priority_score == 90
    assert incidents_rescore(now=timezone.now() + timedelta(hours=3)) == 1
    incident.refresh_from_db()
    assert incident.priority_score == 87
    assert incidents_rescore(now=timezone.now() + timedelta(hours=3)) == 0


def test_sweep_processes_more_than_one_batch(company):
    ingest(company, *(alert(event_time=T0 + timedelta(seconds=i)) for i in range(25)))
    result = correlate_company(company_id=company.pk, batch_size=10)
    assert result.alerts == 25
    assert Incident.objects.get().alert_count == 25


def test_a_shared_sweep_keeps_every_rule_per_company():
    """One sweep over several companies: the same key never meets across them, each
    company's own window, threshold and resolution apply, and batches can split them."""
    strict = CompanyFactory(min_alerts=3, correlation_window_minutes=5)
    loose = CompanyFactory(min_alerts=1, correlation_window_minutes=60)
    for company in (strict, loose):
        ingest(
            company,
            *(alert(event_time=T0 + timedelta(minutes=10 * i), fingerprint="fp") for i in range(3)),
        )
    ingest(loose, alert(status="resolved", fingerprint="fp", event_time=T0 + timedelta(hours=1)))

    results = correlate_companies(company_ids=[strict.pk, loose.pk], batch_size=2)

    assert (results[strict.pk].alerts, results[loose.pk].alerts) == (3, 4)
    strict_incidents = Incident.objects.filter(company=strict)
    assert strict_incidents.count() == 3  # 10 minutes apart, window 5: one each
    assert not any(i.visible for i in strict_incidents)  # min_alerts 3 never reached
    assert results[strict.pk].became_visible == []
    loose_incident = Incident.objects.get(company=loose)
    assert (loose_incident.alert_count, loose_incident.status) == (3, "resolved")
    assert results[loose.pk].became_visible == [loose_incident.pk]
    assert set(Alert.objects.filter(company=loose).values_list("incident", flat=True)) == {
        loose_incident.pk
    }
    assert not Alert.objects.filter(correlated_at__isnull=True).exists()


def _second_round_queries(companies) -> int:
    """Queries of a sweep that grows, resolves and opens incidents in every company."""
    for company in companies:
        AssetFactory(company=company, name="srv-app-01")
        ingest(company, alert(fingerprint="fp"), alert(signature="cpu"))
    correlate_companies(company_ids=[c.pk for c in companies])
    for company in companies:
        ingest(
            company,
            alert(fingerprint="fp", event_time=T0 + timedelta(minutes=1)),
            alert(status="resolved", fingerprint="fp", event_time=T0 + timedelta(minutes=2)),
            alert(signature="new", severity="low"),
        )
    with CaptureQueriesContext(connection) as queries:
        results = correlate_companies(company_ids=[c.pk for c in companies])
    assert sum(r.alerts for r in results.values()) == 3 * len(companies)
    return len(queries)


def test_a_shared_sweep_costs_the_same_queries_for_one_company_or_twenty():
    """Per batch: asynchronous commit, lock, alerts, windows, assets, dependencies,
    incidents, their link keys, earlier firing alerts and the writes; the alerts' read and
    their writes each between setting and resetting the planner (22 with the test's
    savepoint); none of them is repeated per company."""
    one = _second_round_queries([CompanyFactory()])
    twenty = _second_round_queries([CompanyFactory() for _ in range(20)])
    assert one == twenty == 22
    assert Incident.objects.filter(status="resolved").count() == 21
    assert Incident.objects.count() == 63


def test_new_critical_incidents_of_several_companies_reach_their_people_only(
    company_a,
    company_b,
    technician_a,
    technician_b,
    company_admin_a,
    msp_admin,
    django_capture_on_commit_callbacks,
):
    """One sweep, two companies: each company's members and the MSP admins hear of its
    critical incidents; inactive members, other tenants and lower severities do not, nor
    the people on call, whom escalation pages with an Acknowledge link instead."""
    from apps.notifications.models import Notification

    UserFactory(role=Role.TECHNICIAN, companies=[company_a], is_active=False)
    for company in (company_a, company_b):
        ingest(company, alert(severity="critical"), alert(signature="cpu", severity="high"))
    results = correlate_companies(company_ids=[company_a.pk, company_b.pk])
    with django_capture_on_commit_callbacks(execute=True):
        after_correlation(results)

    got = {
        (n.user.email, n.company_id)
        for n in Notification.objects.filter(kind="critical_alert").select_related("user")
    }
    assert got == {
        (company_admin_a.email, company_a.pk),
        (msp_admin.email, company_a.pk),
        (msp_admin.email, company_b.pk),
    }
    paged = {
        (n.user.email, n.company_id)
        for n in Notification.objects.filter(kind="escalation").select_related("user")
    }
    assert paged == {(technician_a.email, company_a.pk), (technician_b.email, company_b.pk)}


def test_a_storm_of_new_incidents_costs_a_bounded_number_of_follow_up_queries(
    company, django_assert_max_num_queries
):
    """Announce, self-heal check and assignment read a company's runbooks, windows,
    recipients and technicians once per sweep, not once per new incident."""
    ingest(company, *(alert(signature=f"sig-{i}", severity="critical") for i in range(40)))
    result = correlate_company(company_id=company.pk)
    assert len(result.became_visible) == 40
    # 9: the announcement reads who is on call (escalation pages them instead).
    with django_assert_max_num_queries(9):
        after_correlation({company.pk: result})


def _announced(company, count: int) -> tuple[int, set[str]]:
    """Queries of what follows a sweep that opens ``count`` critical incidents plus one a
    silence covers, in a company with a member who hears of them; and what was notified."""
    from apps.notifications.models import Notification

    ingest(
        company,
        *(alert(signature=f"sig-{count}-{i}", severity="critical") for i in range(count)),
        alert(signature=f"silenced-{count}", severity="critical"),
    )
    result = correlate_company(company_id=company.pk)
    assert len(result.became_visible) == count + 1
    with CaptureQueriesContext(connection) as queries:
        after_correlation({company.pk: result})
    titles = set(
        Notification.objects.filter(kind="critical_alert", title__contains=f"-{count}").values_list(
            "title", flat=True
        )
    )
    return len(queries), titles


def test_the_silence_check_of_a_sweep_is_made_once_for_all_its_new_incidents(
    company_a, company_admin_a
):
    """Each notified incident costs its own notification rows (an insert in a savepoint);
    the snooze and silence check is three queries for the whole sweep, not per incident.
    The silenced incident is not announced (to the company admin: on-call people hear of
    new incidents from escalation instead)."""
    from apps.silences.models import Silence

    for count in (2, 12):
        Silence.objects.create(
            company=company_a,
            signature=f"silenced-{count}",
            reason="maintenance",
            ends_at=timezone.now() + timedelta(hours=1),
        )
    few, few_titles = _announced(company_a, 2)
    many, many_titles = _announced(company_a, 12)
    assert few_titles == {f"Critical: sig-2-{i} on srv-app-01" for i in range(2)}
    assert len(many_titles) == 12 and not any("silenced" in t for t in many_titles)
    assert many - few == 10 * 3, (few, many)


def test_a_sweep_that_opens_nothing_new_costs_no_follow_up_query(
    company, django_assert_num_queries
):
    """Most sweeps of a storm only grow incidents: nothing to announce, heal or assign."""
    ingest(company, alert())
    sweep(company)
    ingest(company, alert(event_time=T0 + timedelta(minutes=1)))
    result = correlate_company(company_id=company.pk)
    assert (result.alerts, result.became_visible) == (1, [])
    with django_assert_num_queries(0):
        after_correlation({company.pk: result})


def test_deliveries_of_many_companies_queue_one_drain_task_per_shard(
    settings, django_capture_on_commit_callbacks
):
    """With Redis, pending companies gather in their shard's set and a single task per
    shard sweeps them all."""
    from alertwhisperer.celery import app
    from apps.common.redis import get_redis
    from apps.incidents.tasks import correlate_pending, pending_set, shard_of

    assert settings.REDIS_URL, "make test runs with Redis"
    assert settings.CORRELATION_DRAINS == 2
    companies = [CompanyFactory() for _ in range(6)]
    shards = {shard_of(c.pk) for c in companies}
    assert shards == {0, 1}
    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            for company in companies:
                ingest(company, alert(), delivery_id="")
                ingest(company, alert(signature="other"), delivery_id="")
        assert get_redis().llen("correlation") == 2  # one drain per shard for twelve deliveries
        assert sum(get_redis().scard(pending_set(shard)) for shard in shards) == 6
    finally:
        app.control.purge()
        app.conf.task_always_eager = True
    assert correlate_pending(0) + correlate_pending(1) == 12
    assert Incident.objects.count() == 12
    assert not Alert.objects.filter(correlated_at__isnull=True).exists()
    assert all(get_redis().scard(pending_set(shard)) == 0 for shard in shards)


def test_a_company_added_while_its_drain_runs_gets_a_drain(
    settings, django_capture_on_commit_callbacks
):
    """A delivery that finds its shard's drain running only adds its company to the set;
    the drain looks again after letting go, and queues the next one."""
    from alertwhisperer.celery import app
    from apps.common.redis import get_redis
    from apps.incidents import tasks

    company = CompanyFactory()
    shard = tasks.shard_of(company.pk)
    get_redis().set(tasks._drain_flag(shard), 1)  # a drain of this shard is running
    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            ingest(company, alert())
        assert get_redis().llen("correlation") == 0  # the running drain will see it
        tasks.correlate_pending.run(shard)  # sweeps it, lets go, finds nothing more
        assert get_redis().llen("correlation") == 0
        assert not get_redis().exists(tasks._drain_flag(shard))
        with django_capture_on_commit_callbacks(execute=True):
            ingest(company, alert(signature="later"))
        assert get_redis().llen("correlation") == 1  # no drain running: one is queued
    finally:
        app.control.purge()
        app.conf.task_always_eager = True
    assert not Alert.objects.filter(correlated_at__isnull=True, signature="disk_full").exists()


def test_a_drain_past_its_time_budget_finishes_cleanly(settings, monkeypatch):
    """The budget is checked after each batch; when nothing is left there is nothing to
    hand back to the pending set."""
    from apps.common.redis import get_redis
    from apps.incidents import tasks

    assert settings.REDIS_URL, "make test runs with Redis"
    monkeypatch.setattr(tasks, "DRAIN_SECONDS", -1)
    companies = [CompanyFactory() for _ in range(3)]
    for company in companies:
        ingest(company, alert())
    for company in companies:
        get_redis().sadd(tasks.pending_set(tasks.shard_of(company.pk)), company.pk)
    assert tasks.correlate_pending(0) + tasks.correlate_pending(1) == 3
    assert all(get_redis().scard(tasks.pending_set(shard)) == 0 for shard in (0, 1))
    assert not Alert.objects.filter(correlated_at__isnull=True).exists()


def test_auto_assignment_of_a_backlog_costs_a_fixed_number_of_queries(
    django_assert_max_num_queries,
):
    """After a backlog a sweep can make hundreds of incidents visible at once: they are
    assigned together (schedules, flagged companies, lock, silences, technicians with their
    loads, then one write each for incidents, timeline, audit and notifications), spread
    evenly over each company's on-call people."""
    from apps.notifications.models import Notification

    companies = [CompanyFactory() for _ in range(3)]
    people = {
        c.pk: [UserFactory(role="Technician", companies=[c]) for _ in range(2)] for c in companies
    }
    results = {}
    for company in companies:
        ingest(company, *(alert(signature=f"sig-{i}", severity="high") for i in range(30)))
        results[company.pk] = correlate_company(company_id=company.pk)
    busy = people[companies[0].pk][0]
    ingest(companies[0], alert(signature="earlier", severity="low"))
    earlier = correlate_company(company_id=companies[0].pk).became_visible
    Incident.objects.filter(pk__in=earlier).update(assigned_to=busy)

    with django_assert_max_num_queries(11):
        incidents_auto_assign(
            incident_ids={pk: result.became_visible for pk, result in results.items()}
        )

    for company in companies:
        loads = Counter(
            Incident.objects.filter(company=company, signature__startswith="sig-").values_list(
                "assigned_to", flat=True
            )
        )
        assert set(loads) == {u.pk for u in people[company.pk]}
        assert sum(loads.values()) == 30
    free = people[companies[0].pk][1]
    # 31 incidents in all with the earlier one: 16 and 15, the tie to the older account.
    assert Incident.objects.filter(assigned_to=busy).count() == 16
    assert Incident.objects.filter(assigned_to=free).count() == 15
    assert AuditLog.objects.filter(action="incident_assigned").count() == 90
    assert IncidentEvent.objects.filter(kind="assigned", details__automatic=True).count() == 90
    assert Notification.objects.filter(kind="assignment").count() == 90


def test_a_merged_incident_hands_its_untouched_keys_to_the_survivor(company):
    """A sweep reads only the link keys its alerts can match or extend. When a late alert
    merges two incidents, the absorbed one's other keys (here its burst key, which the
    bridging alert does not carry) go to the survivor, so a later alert of that burst
    still joins it."""
    low = {"asset_name": "pod-1", "signature": "OOMKilled", "severity": "low"}
    ingest(company, alert(**low, event_time=T0))
    sweep(company)
    ingest(company, alert(**low, event_time=T0 + timedelta(minutes=20), labels={"deployment": "d"}))
    sweep(company)
    first, second = Incident.objects.order_by("pk")
    ingest(company, alert(**low, event_time=T0 + timedelta(minutes=10)))
    sweep(company)
    second.refresh_from_db()
    assert second.merged_into_id == first.pk
    ingest(
        company,
        alert(
            **{**low, "asset_name": "pod-2"},
            event_time=T0 + timedelta(minutes=30),
            labels={"deployment": "d"},
        ),
    )
    sweep(company)
    assert Alert.objects.get(asset_name="pod-2").incident_id == first.pk
    assert set(first.link_keys.values_list("key", flat=True)) >= {
        "k:pod-1|OOMKilled",
        "b:signature|label:deployment=OOMKilled|deployment=d",
    }


def test_a_sweep_reads_the_dependency_graph_around_its_assets_only(company_a, company_b):
    """``load_around``: every edge up from the named assets (so their ancestors are
    complete) and whether they have dependents; not the pods hanging under a deployment,
    and nothing of another company with the same names."""
    from apps.incidents.dependencies import dependencies_replace
    from apps.incidents.grouping import load_around

    graph = {
        "lb-01": ["app-01"],
        "app-01": ["db-01"],
        "db-01": ["switch-01"],
        **{f"pod-{i}": ["payments"] for i in range(200)},
    }
    for company in (company_a, company_b):
        dependencies_replace(company=company, graph=graph, actor=None)
    graphs = load_around({}, {(company_a.pk, "app-01"), (company_a.pk, "payments")})
    around = graphs[company_a.pk]
    assert around.ancestors("app-01") == {"db-01", "switch-01"}
    assert {"app-01", "payments"} <= around.has_dependents
    assert sum(len(p) for p in around.parents.values()) == 2  # app-01 → db-01 → switch-01
    assert company_b.pk not in graphs
    # Asking again for what was read reads nothing; a new name adds its part.
    with CaptureQueriesContext(connection) as queries:
        load_around(graphs, {(company_a.pk, "app-01")})
    assert len(queries) == 0
    load_around(graphs, {(company_a.pk, "lb-01")})
    assert graphs[company_a.pk].ancestors("lb-01") == {"app-01", "db-01", "switch-01"}


def test_deriving_from_labels_inserts_only_the_assets_the_graph_does_not_know(company):
    """``load_around`` reads the ids of the named assets that exist (and of their
    ancestors), so deriving edges onto them inserts no asset and reads none back: a storm's
    deployments and its known pods cost one insert of the new edges, a new pod one more
    (its asset, returning its id)."""
    from apps.incidents.dependencies import dependencies_replace
    from apps.incidents.grouping import derive_from_labels, load_around
    from apps.tenants.models import Asset, AssetDependency

    dependencies_replace(company=company, graph={"payments": ["db-01"]}, actor=None)
    AssetFactory(company=company, name="pod-known")
    graphs = load_around(
        {}, {(company.pk, n) for n in ("pod-known", "pod-new", "payments", "missing")}
    )
    ids = dict(Asset.objects.filter(company=company).values_list("name", "id"))
    assert graphs[company.pk].ids == {n: ids[n] for n in ("pod-known", "payments", "db-01")}
    labels = {"deployment": "payments"}
    with CaptureQueriesContext(connection) as queries:
        derive_from_labels(graphs, [(company.pk, "pod-known", labels)])
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        derive_from_labels(graphs, [(company.pk, "pod-new", labels)])
    assert len(queries) == 2  # the new asset, returning its id; the edge
    pod = Asset.objects.get(company=company, name="pod-new")
    assert graphs[company.pk].ids["pod-new"] == pod.pk
    assert (pod.asset_type, pod.tags, pod.is_critical) == ("server", {}, False)
    # An asset created since the graph was read (by another process) is read back.
    late = AssetFactory(company=company, name="pod-late")
    with CaptureQueriesContext(connection) as queries:
        derive_from_labels(graphs, [(company.pk, "pod-late", labels)])
    assert len(queries) == 3
    assert graphs[company.pk].ids["pod-late"] == late.pk
    assert set(
        AssetDependency.objects.filter(company=company, source="labels").values_list(
            "asset__name", "depends_on__name"
        )
    ) == {("pod-known", "payments"), ("pod-new", "payments"), ("pod-late", "payments")}
    assert graphs[company.pk].ancestors("pod-new") == {"payments", "db-01"}


def test_a_new_pods_alert_links_to_the_asset_its_labels_made_in_the_same_sweep(company):
    """The sweep reads its alerts' assets after deriving the labels' dependencies, so the
    first alert of a never-seen pod already points at the pod's new asset."""
    AssetFactory(company=company, name="srv-db-01", is_critical=True)
    ingest(
        company,
        alert(asset_name="pod-7", labels={"deployment": "payments"}, fingerprint="p"),
        alert(asset_name="srv-db-01", fingerprint="d"),
    )
    sweep(company)
    pod, db = Alert.objects.get(fingerprint="p"), Alert.objects.get(fingerprint="d")
    assert pod.asset is not None and pod.asset.name == "pod-7"
    assert pod.incident.asset_id == pod.asset_id
    assert db.asset.is_critical and db.incident.asset_id == db.asset_id


def test_a_shared_sweep_reads_each_companys_own_keys_only(monkeypatch):
    """Key segments are read for the (company, key) pairs of each alert's own company: a
    sweep over many companies must not probe every company for every key of the batch."""
    import apps.incidents.correlation as correlation

    read = []

    def segments(pairs, incident_ids):
        read.append(set(pairs))
        return key_segments(pairs, incident_ids)

    key_segments = correlation._key_segments
    monkeypatch.setattr(correlation, "_key_segments", segments)
    companies = [CompanyFactory() for _ in range(5)]
    for number, company in enumerate(companies):
        ingest(company, alert(asset_name=f"host-{number}"))
    correlate_companies(company_ids=[c.pk for c in companies])
    for number, company in enumerate(companies):
        ingest(company, alert(asset_name=f"host-{number}", event_time=T0 + timedelta(minutes=1)))
    correlate_companies(company_ids=[c.pk for c in companies])
    pairs = read[-1]
    assert {(c.pk, f"k:host-{n}|disk_full") for n, c in enumerate(companies)} <= pairs
    owner = {company.pk: number for number, company in enumerate(companies)}
    assert all(key == f"k:host-{owner[pk]}|disk_full" for pk, key in pairs)
    assert Incident.objects.count() == 5
