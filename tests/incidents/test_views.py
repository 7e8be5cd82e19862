"""The incident page: who sees it, what it shows, the live partials, and the forms that
change status, assign and add notes (with and without htmx)."""

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts import permissions
from apps.accounts.permissions import Action
from apps.accounts.roles import Role
from apps.audit.models import AuditLog
from apps.incidents.models import IncidentEvent
from apps.notifications.models import Channel, Delivery, Notification
from apps.silences.models import Snooze
from tests.factories import AssetFactory, UserFactory
from tests.incidents.factories import AlertFactory, IncidentFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
ACTIONS = {
    "incidents:status": {"status": "in_progress", "note": ""},
    "incidents:assign": {"assignee": ""},
    "incidents:take": {},
    "incidents:note": {"text": "Looking into it"},
}


@pytest.fixture
def incident(company_a):
    return IncidentFactory(company=company_a, title="Database down on db-01", key="db-01|DbDown")


def url(name: str, incident, query: str = "") -> str:
    return reverse(name, args=[incident.pk]) + query


class _ElementText(HTMLParser):
    VOID = frozenset({"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"})

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.found = False
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif not self.found and dict(attrs).get("id") == self.element_id:
            self.found = True
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def text_of(body: str | bytes, element_id: str) -> str:
    """The text inside the element with ``element_id``, whitespace collapsed."""
    parser = _ElementText(element_id)
    parser.feed(body.decode() if isinstance(body, bytes) else body)
    assert parser.found, f"#{element_id} not found"
    return " ".join(" ".join(parser.parts).split())


def assert_untouched(incident) -> None:
    before = (incident.status, incident.assigned_to_id)
    incident.refresh_from_db()
    assert (incident.status, incident.assigned_to_id) == before
    assert not IncidentEvent.objects.filter(incident=incident).exists()
    assert not AuditLog.objects.filter(action__startswith="incident_").exists()


# --- Who sees the page ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("msp_admin", 200), ("company_admin_a", 200), ("technician_a", 200), ("technician_b", 404)],
)
def test_the_page_is_scoped_to_the_companys_people(request, client, incident, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(url("incidents:detail", incident)).status_code == status
    for part in ("header", "breakdown", "timeline", "alerts"):
        assert client.get(url(f"incidents:{part}", incident)).status_code == status


def test_anonymous_visitors_are_sent_to_log_in(client, incident):
    for name in ("incidents:detail", "incidents:timeline"):
        response = client.get(url(name, incident))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    response = client.post(url("incidents:note", incident), {"text": "hi"})
    assert response["Location"].startswith(reverse("accounts:login"))
    assert not IncidentEvent.objects.exists()


def test_a_user_without_a_role_sees_nothing(client, company_a, incident):
    client.force_login(UserFactory(companies=[company_a]))
    assert client.get(url("incidents:detail", incident)).status_code == 404


def test_a_missing_incident_is_a_404(client, technician_a):
    client.force_login(technician_a)
    assert client.get(reverse("incidents:detail", args=[999999])).status_code == 404


def test_a_pending_incident_can_be_opened_and_says_why_it_is_hidden(
    client, technician_a, company_a
):
    company_a.min_alerts = 3
    company_a.save()
    pending = IncidentFactory(company=company_a, visible=False, alert_count=1)
    client.force_login(technician_a)
    body = client.get(url("incidents:detail", pending)).content.decode()
    assert "Pending" in body
    assert "shows an incident once it has 3 alerts; this one has 1." in body


# --- What the page shows --------------------------------------------------------------------


def test_header_shows_the_incident_at_a_glance(client, technician_a, company_a):
    asset = AssetFactory(
        company=company_a,
        name="db-01",
        asset_type="database",
        os="Ubuntu 22.04",
        is_critical=True,
        instance_id="i-0123456789abcdef0",
    )
    incident = IncidentFactory(
        company=company_a,
        asset=asset,
        asset_name="db-01",
        key="db-01|DbDown",
        severity="critical",
        status="in_progress",
        priority_score=128,
        in_maintenance=True,
        tool_sources=["Datadog", "Zabbix"],
        assigned_to=technician_a,
    )
    client.force_login(technician_a)
    body = client.get(url("incidents:detail", incident)).content.decode()

    header = text_of(body, "incident-header")
    for expected in (
        incident.title,
        "128",
        "In progress",
        "Critical",
        "In maintenance",
        "Acme Corp",
        str(technician_a),
        "Datadog",
        "Zabbix",
        "db-01|DbDown",
        "First alert",
        "Last alert",
    ):
        assert expected in header, expected
    asset_box = text_of(body, "incident-asset")
    for expected in ("db-01", "Database", "Ubuntu 22.04", "Critical asset", "i-0123456789abcdef0"):
        assert expected in asset_box, expected


def test_an_asset_outside_the_inventory_is_said_so(client, technician_a, incident):
    client.force_login(technician_a)
    body = client.get(url("incidents:detail", incident)).content.decode()
    assert "is not in the asset inventory" in text_of(body, "incident-asset")


def test_priority_breakdown_of_the_guides_example(client, technician_a, company_a):
    """Critical, on a critical asset, 6 alerts, Datadog and Zabbix, 2 hours old: 128."""
    incident = IncidentFactory(
        company=company_a,
        asset=AssetFactory(company=company_a, name="db-01", is_critical=True),
        severity="critical",
        alert_count=6,
        tool_sources=["Datadog", "Zabbix"],
        first_alert_at=timezone.now() - timedelta(hours=2, minutes=10),
        last_alert_at=timezone.now(),
        priority_score=128,
    )
    client.force_login(technician_a)
    body = client.get(url("incidents:detail", incident)).content.decode()

    assert text_of(body, "incident-breakdown") == (
        "Priority breakdown "
        "Severity: critical +90 "
        "Critical asset +20 "
        "Duplicates: 5 × 2 (max 20) +10 "
        "Multiple tools (2 reporting) +10 "
        "Age: 2 h (max 10) −2 "
        "Priority now 128"
    )


def test_breakdown_explains_a_stale_list_score(client, technician_a, company_a):
    incident = IncidentFactory(company=company_a, severity="low", priority_score=40)
    client.force_login(technician_a)
    breakdown = text_of(
        client.get(url("incidents:detail", incident)).content.decode(), "incident-breakdown"
    )
    assert "Critical asset: no +0" in breakdown
    assert "Priority now 10" in breakdown
    assert "Lists show 40, the score at its last refresh" in breakdown


def test_alerts_are_listed_newest_first_and_paginated(client, technician_a, incident):
    start = timezone.now() - timedelta(hours=1)
    for n in range(30):
        AlertFactory(
            incident=incident,
            signature=f"Sig{n:02d}",
            event_time=start + timedelta(minutes=n),
            delivery_id=f"dlv-{n:02d}",
        )
    closed = AlertFactory(
        incident=incident, signature="SigClosed", event_time=start - timedelta(minutes=5)
    )
    closed.resolved_at = start
    closed.save()
    AlertFactory(company=incident.company, signature="Unrelated")
    client.force_login(technician_a)

    first = text_of(client.get(url("incidents:detail", incident)).content.decode(), "alerts")
    assert first.index("Sig29") < first.index("Sig28")
    assert "Sig05" in first and "Sig04" not in first
    assert "dlv-29" in first and "Firing" in first
    assert "Older →" in first and "Unrelated" not in first

    second = text_of(client.get(url("incidents:alerts", incident, "?page=2")).content, "alerts")
    assert "Sig04" in second and "Sig00" in second and "Sig05" not in second
    assert "SigClosed" in second and "Resolved" in second
    assert "← Newer" in second and "Older →" not in second


def test_an_incident_without_alerts_says_so(client, technician_a, incident):
    client.force_login(technician_a)
    body = client.get(url("incidents:detail", incident)).content.decode()
    assert "No alerts are attached to this incident." in body
    assert "Nothing on the timeline yet." in body


def test_timeline_shows_alerts_status_changes_assignments_and_notes(
    client, technician_a, company_admin_a, incident
):
    AlertFactory(incident=incident, tool_source="Zabbix", event_time=timezone.now())
    client.force_login(company_admin_a)
    client.post(url("incidents:assign", incident), {"assignee": technician_a.pk})
    client.post(url("incidents:note", incident), {"text": "Rebooting the primary."})
    client.post(url("incidents:status", incident), {"status": "resolved", "note": "Rebooted."})

    timeline = text_of(client.get(url("incidents:timeline", incident)).content, "timeline")

    assert "Alert from Zabbix" in timeline
    assert f"Assigned to {technician_a} by {company_admin_a}" in timeline
    assert f"Note by {company_admin_a} Rebooting the primary." in timeline
    assert "Status: New → Resolved" in timeline and "Rebooted." in timeline
    assert timeline.index("Status: New → Resolved") < timeline.index("Alert from Zabbix")


def test_the_timeline_folds_each_run_of_alerts_between_peoples_actions(
    client, technician_a, incident
):
    start = timezone.now() - timedelta(hours=1)
    for minute, tool in ((0, "Zabbix"), (2, "Datadog"), (5, "Zabbix")):
        AlertFactory(
            incident=incident, tool_source=tool, event_time=start + timedelta(minutes=minute)
        )
    IncidentEvent.objects.create(incident=incident, kind="note", actor=technician_a, text="On it")
    AlertFactory(
        incident=incident, tool_source="Zabbix", event_time=timezone.now() + timedelta(minutes=1)
    )
    client.force_login(technician_a)

    timeline = text_of(client.get(url("incidents:timeline", incident)).content, "timeline")

    assert timeline.index("1 alert from Zabbix") < timeline.index("On it")
    assert timeline.index("On it") < timeline.index("+3 alerts from Datadog and Zabbix")


def test_live_regions_refetch_themselves_on_the_live_signal(client, technician_a, incident):
    client.force_login(technician_a)
    body = client.get(url("incidents:detail", incident)).content.decode()
    for part, element_id in (
        ("header", "incident-header"),
        ("breakdown", "incident-breakdown"),
        ("timeline", "timeline"),
        ("alerts", "alerts"),
    ):
        tag = re.search(rf'<\w+[^>]*id="{element_id}"[^>]*>', body, re.S).group(0)
        assert f'hx-get="{url(f"incidents:{part}", incident)}' in tag
        assert 'hx-trigger="live-refresh from:body throttle:1s"' in tag
        partial = client.get(url(f"incidents:{part}", incident), **HTMX).content.decode()
        assert f'id="{element_id}"' in partial
        assert "<html" not in partial


def test_the_page_stays_within_a_fixed_number_of_queries(
    client, technician_a, company_a, django_assert_max_num_queries
):
    incident = IncidentFactory(
        company=company_a,
        asset=AssetFactory(company=company_a, name="db-01"),
        assigned_to=technician_a,
        alert_count=200,
    )
    AlertFactory.create_batch(200, incident=incident)
    IncidentEvent.objects.bulk_create(
        IncidentEvent(incident=incident, kind="note", actor=technician_a, text=f"note {n}")
        for n in range(50)
    )
    channel = Channel.objects.create(
        owner=technician_a, kind="email", name="Mail", target_encrypted="x", target_hint="t…"
    )
    Delivery.objects.bulk_create(
        Delivery(
            channel=channel,
            recipient=technician_a,
            incident=incident,
            kind="escalation",
            title=f"m {n}",
        )
        for n in range(30)
    )
    client.force_login(technician_a)

    # Whatever the number of alerts, notes and messages sent: snooze and silence marks take
    # three queries, "Why these alerts" four (assets, dependencies, reasons, merged
    # incidents), "Messages sent" one.
    with django_assert_max_num_queries(21):
        response = client.get(url("incidents:detail", incident))

    assert response.status_code == 200
    body = response.content.decode()
    # 50 notes, and the 50 latest alerts (all before them) folded into one line.
    assert body.count('class="kind-') == 51
    assert "+50 alerts from Datadog" in body
    assert body.count("Email to t…") == 30


def test_a_note_with_markup_is_shown_as_text(client, technician_a, incident):
    client.force_login(technician_a)
    client.post(url("incidents:note", incident), {"text": "<script>alert('x')</script>"})
    body = client.get(url("incidents:detail", incident)).content.decode()
    assert "<script>alert(" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body


# --- Actions without JavaScript -------------------------------------------------------------


def test_changing_status_redirects_back_with_a_message(client, technician_a, company_a, incident):
    client.force_login(technician_a)
    response = client.post(
        url("incidents:status", incident), {"status": "in_progress", "note": ""}, follow=True
    )

    assert response.redirect_chain == [(url("incidents:detail", incident), 302)]
    assert "Status changed to in progress." in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == "in_progress"
    log = AuditLog.objects.get(action="incident_status_changed")
    assert (log.actor, log.company) == (technician_a, company_a)
    assert IncidentEvent.objects.get(incident=incident).actor == technician_a


def test_resolving_with_a_note(client, company_admin_a, incident):
    client.force_login(company_admin_a)
    client.post(url("incidents:status", incident), {"status": "resolved", "note": "Disk freed."})
    incident.refresh_from_db()
    assert (incident.status, incident.resolution, incident.resolved_by) == (
        "resolved",
        "manual",
        company_admin_a,
    )
    assert incident.accepting is False


def test_resolving_without_a_note_shows_the_error_inline(client, technician_a, incident):
    client.force_login(technician_a)
    response = client.post(url("incidents:status", incident), {"status": "resolved", "note": ""})

    assert response.status_code == 400
    actions = text_of(response.content.decode(), "incident-actions")
    assert "a resolution note is required" in actions
    assert_untouched(incident)


def test_the_same_status_is_a_field_error(client, technician_a, incident):
    client.force_login(technician_a)
    response = client.post(url("incidents:status", incident), {"status": "new"})
    assert response.status_code == 400
    assert "The incident is already new." in response.content.decode()
    assert_untouched(incident)


def test_an_unknown_status_is_a_field_error(client, technician_a, incident):
    client.force_login(technician_a)
    response = client.post(url("incidents:status", incident), {"status": "closed"})
    assert response.status_code == 400
    assert "Select a valid choice" in text_of(response.content.decode(), "incident-actions")
    assert_untouched(incident)


def test_assigning_a_colleague_notifies_them(
    client, company_admin_a, technician_a, company_a, incident, django_capture_on_commit_callbacks
):
    client.force_login(company_admin_a)
    body = client.get(url("incidents:detail", incident)).content.decode()
    assert f'<option value="{technician_a.pk}">{technician_a} · 0 open</option>' in body

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("incidents:assign", incident), {"assignee": technician_a.pk})

    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.assigned_to == technician_a
    log = AuditLog.objects.get(action="incident_assigned")
    assert (log.actor, log.company, log.details["automatic"]) == (company_admin_a, company_a, False)
    assert Notification.objects.get().user == technician_a


def test_assigning_someone_outside_the_company_is_an_error(
    client, company_admin_a, technician_b, incident
):
    client.force_login(company_admin_a)
    response = client.post(url("incidents:assign", incident), {"assignee": technician_b.pk})
    assert response.status_code == 400
    assert "Choose an active technician or company admin of this company." in text_of(
        response.content.decode(), "incident-actions"
    )
    assert_untouched(incident)


def test_take_it_assigns_the_incident_to_yourself(client, technician_a, incident):
    client.force_login(technician_a)
    response = client.post(url("incidents:take", incident), follow=True)
    assert "You took the incident." in response.content.decode()
    incident.refresh_from_db()
    assert incident.assigned_to == technician_a
    assert AuditLog.objects.get(action="incident_assigned").actor == technician_a
    assert "Take it" not in text_of(response.content.decode(), "incident-actions")


def test_taking_an_incident_you_hold_is_an_error(client, technician_a, incident):
    incident.assigned_to = technician_a
    incident.save()
    client.force_login(technician_a)
    response = client.post(url("incidents:take", incident))
    assert response.status_code == 400
    assert "already assigned to" in text_of(response.content.decode(), "incident-actions")


def test_adding_a_note(client, technician_a, company_a, incident):
    client.force_login(technician_a)
    response = client.post(url("incidents:note", incident), {"text": "Called the DBA."})
    assert response.status_code == 302
    assert response["Location"] == url("incidents:detail", incident) + "#timeline"
    event = IncidentEvent.objects.get(incident=incident)
    assert (event.kind, event.actor, event.text) == ("note", technician_a, "Called the DBA.")
    log = AuditLog.objects.get(action="incident_note_added")
    assert (log.actor, log.company) == (technician_a, company_a)


@pytest.mark.parametrize(
    ("text", "error"),
    [("   ", "Write the note first."), ("x" * 5001, "at most 5000 characters")],
)
def test_an_empty_or_overlong_note_is_a_field_error(client, technician_a, incident, text, error):
    client.force_login(technician_a)
    response = client.post(url("incidents:note", incident), {"text": text})
    assert response.status_code == 400
    assert error in text_of(response.content.decode(), "note-form")
    assert_untouched(incident)


@pytest.mark.parametrize("name", list(ACTIONS))
def test_another_companys_technician_cannot_act(client, technician_b, incident, name):
    client.force_login(technician_b)
    assert client.post(url(name, incident), ACTIONS[name]).status_code == 404
    assert_untouched(incident)


@pytest.mark.parametrize("name", list(ACTIONS))
def test_a_user_without_a_role_cannot_act(client, company_a, incident, name):
    client.force_login(UserFactory(companies=[company_a]))
    assert client.post(url(name, incident), ACTIONS[name]).status_code == 404
    assert_untouched(incident)


@pytest.mark.parametrize("name", list(ACTIONS))
def test_a_role_without_the_update_permission_is_refused_with_a_message(
    client, monkeypatch, technician_a, incident, name
):
    monkeypatch.setitem(permissions.ROLE_ACTIONS, Role.TECHNICIAN, frozenset({Action.VIEW}))
    client.force_login(technician_a)

    response = client.post(url(name, incident), ACTIONS[name])

    assert response.status_code == 403
    assert "You cannot change this incident" in response.content.decode()
    assert_untouched(incident)
    page = client.get(url("incidents:detail", incident)).content.decode()
    assert "your role does not allow changing" in page
    assert 'action="' + url(name, incident) not in page


def test_actions_are_post_only(client, technician_a, incident):
    client.force_login(technician_a)
    for name in ACTIONS:
        assert client.get(url(name, incident)).status_code == 405


def test_actions_need_the_csrf_token(technician_a, incident):
    client = Client(enforce_csrf_checks=True)
    client.force_login(technician_a)
    for name in ACTIONS:
        assert client.post(url(name, incident), ACTIONS[name]).status_code == 403
    assert_untouched(incident)

    page = client.get(url("incidents:detail", incident)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        url("incidents:note", incident), {"text": "With a token", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


# --- Actions with htmx ----------------------------------------------------------------------


def test_an_htmx_action_answers_its_partial_and_refreshes_the_live_regions(
    client, technician_a, incident
):
    client.force_login(technician_a)
    response = client.post(url("incidents:take", incident), **HTMX)

    assert response.status_code == 200
    assert response["HX-Trigger"] == '{"live-refresh": {}}'
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="incident-actions"')
    assert "You took the incident." in body
    assert f"Assigned to <strong>{technician_a}</strong> (you)" in body


def test_an_htmx_note_gets_a_fresh_form_back(client, technician_a, incident):
    client.force_login(technician_a)
    response = client.post(url("incidents:note", incident), {"text": "On it"}, **HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"] == '{"live-refresh": {}}'
    assert "Note added." in response.content.decode()
    assert "On it</textarea>" not in response.content.decode()


def test_an_invalid_htmx_action_shows_its_errors_in_place(client, technician_a, incident):
    client.force_login(technician_a)
    response = client.post(
        url("incidents:status", incident), {"status": "resolved", "note": ""}, **HTMX
    )
    # 200 so that htmx swaps it in: htmx 2 leaves error responses unswapped.
    assert response.status_code == 200
    assert "HX-Trigger" not in response
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="incident-actions"')
    assert "a resolution note is required" in body
    assert_untouched(incident)


# --- The Incidents page ----------------------------------------------------------------------

LIST = "/incidents/"


def rows(body: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-incident="(\d+)"', body)]


@pytest.fixture
def storm(company_a, company_b, technician_a):
    """Incidents of two companies, one assigned to technician_a, with alerts to search."""
    now = timezone.now()
    db = IncidentFactory(
        company=company_a,
        asset_name="srv-db-01",
        signature="disk_full",
        title="disk_full on srv-db-01",
        severity="critical",
        priority_score=120,
        alert_count=5,
        last_alert_at=now - timedelta(minutes=5),
    )
    AlertFactory(
        incident=db, tool_source="Zabbix", labels={"team": "storage"}, event_time=db.last_alert_at
    )
    web = IncidentFactory(
        company=company_a,
        asset_name="srv-web-02",
        signature="service_down:nginx",
        title="service_down:nginx on srv-web-02",
        severity="high",
        priority_score=80,
        alert_count=9,
        assigned_to=technician_a,
        status="in_progress",
        last_alert_at=now - timedelta(hours=3),
    )
    AlertFactory(
        incident=web,
        tool_source="Datadog",
        message="nginx is not running",
        event_time=web.last_alert_at,
    )
    done = IncidentFactory(
        company=company_a, status="resolved", title="cpu_high on srv-app-03", priority_score=10
    )
    other = IncidentFactory(company=company_b, title="disk_full on globex-db", priority_score=90)
    AlertFactory(incident=other, tool_source="Zabbix")
    return {"db": db, "web": web, "done": done, "other": other}


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("msp_admin", ["db", "other", "web"]),
        ("company_admin_a", ["db", "web"]),
        ("technician_a", ["db", "web"]),
        ("technician_b", ["other"]),
    ],
)
def test_the_incidents_page_is_scoped_to_the_viewer(request, client, storm, who, expected):
    client.force_login(request.getfixturevalue(who))
    response = client.get(LIST)
    assert response.status_code == 200
    assert rows(response.content.decode()) == [storm[name].pk for name in expected]


def test_the_incidents_page_is_in_the_navigation(client, technician_a, storm):
    client.force_login(technician_a)
    body = client.get(reverse("home")).content.decode()
    assert f'href="{LIST}"' in body


def test_anonymous_users_go_to_login_from_the_incidents_page(client):
    response = client.get(LIST)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=srv-db-01", ["db"]),  # host
        ("q=DISK_FULL", ["db", "other"]),  # signature, any case
        ("q=not+running", ["web"]),  # alert message
        ("q=datadog", ["web"]),  # tool
        ("q=storage", ["db"]),  # labels
        ("status=new", ["db", "other"]),
        ("status=in_progress", ["web"]),
        ("status=resolved", ["done"]),
        ("status=all", ["db", "other", "web", "done"]),
        ("status=bogus", ["db", "other", "web"]),  # unknown: the default
        ("severity=critical", ["db"]),
        ("company=globex", ["other"]),
        ("assignee=mine", ["web"]),
        ("assignee=unassigned", ["db", "other"]),
        ("tool=zabbix", ["db", "other"]),
        ("since=1h", ["db", "other"]),
        ("since=24h", ["db", "other", "web"]),
        ("sort=alerts", ["web", "db", "other"]),
        ("sort=recent", ["other", "db", "web"]),
        ("q=srv&severity=high&assignee=mine", ["web"]),
        ("snoozed=only", ["other"]),
        ("snoozed=show", ["db", "other", "web"]),
        ("snoozed=bogus", ["db", "web"]),
    ],
)
def test_every_filter_of_the_incidents_page(client, msp_admin, storm, query, expected):
    storm["web"].assigned_to = msp_admin
    storm["web"].save()
    if query.startswith("snoozed"):
        Snooze.objects.create(incident=storm["other"], until=timezone.now() + timedelta(hours=1))
        Snooze.objects.create(  # woken early: not snoozed
            incident=storm["db"],
            until=timezone.now() + timedelta(hours=1),
            ended_at=timezone.now(),
        )
    client.force_login(msp_admin)
    body = client.get(f"{LIST}?{query}").content.decode()
    assert rows(body) == [storm[name].pk for name in expected]


def test_search_by_incident_number(client, technician_a, storm):
    client.force_login(technician_a)
    for q in (str(storm["web"].pk), f"%23{storm['web'].pk}"):
        assert rows(client.get(f"{LIST}?q={q}").content.decode()) == [storm["web"].pk]


def test_a_technician_cannot_filter_their_way_into_another_company(client, technician_a, storm):
    client.force_login(technician_a)
    body = client.get(f"{LIST}?company=globex&status=all").content.decode()
    # An unknown company is ignored: their own incidents, all statuses.
    assert rows(body) == [storm["db"].pk, storm["web"].pk, storm["done"].pk]
    assert "globex" not in body


def test_htmx_gets_the_results_whose_live_refresh_keeps_page_filters_and_sort(
    client, technician_a, company_a
):
    for n in range(30):
        IncidentFactory(company=company_a, title=f"storm incident {n}", priority_score=n)
    client.force_login(technician_a)
    response = client.get(f"{LIST}?q=storm&sort=recent&page=2", **HTMX)
    body = response.content.decode()
    assert "<html" not in body and 'id="incident-results"' in body
    assert "HX-Request" in response["Vary"]
    assert len(rows(body)) == 5
    assert f'hx-get="{LIST}?q=storm&amp;sort=recent&amp;page=2"' in body
    assert "live-refresh from:body" in body
    assert 'href="?q=storm&amp;sort=recent"' in body  # page 1 is the default
    # A history restore gets the whole page.
    full = client.get(f"{LIST}?page=2", **HTMX, HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in full.content.decode()


def test_the_page_keeps_its_queries_fixed(
    client, technician_a, company_a, django_assert_max_num_queries
):
    for _ in range(25):
        AlertFactory(incident=IncidentFactory(company=company_a))
    client.force_login(technician_a)
    with django_assert_max_num_queries(14):
        client.get(f"{LIST}?q=srv")


# --- Bulk actions ----------------------------------------------------------------------------

BULK = "/incidents/bulk/"


def test_bulk_take_assigns_every_selected_incident_to_the_actor(client, technician_a, storm):
    client.force_login(technician_a)
    response = client.post(
        BULK, {"ids": [storm["db"].pk], "action": "take", "next": f"{LIST}?q=srv"}
    )
    assert response.status_code == 302 and response["Location"] == f"{LIST}?q=srv"
    storm["db"].refresh_from_db()
    assert storm["db"].assigned_to == technician_a
    assert AuditLog.objects.filter(action="incident_assigned").count() == 1


def test_bulk_take_skips_the_ones_already_yours_and_says_why(client, technician_a, storm):
    client.force_login(technician_a)
    response = client.post(
        BULK, {"ids": [storm["db"].pk, storm["web"].pk], "action": "take"}, follow=True
    )
    body = response.content.decode()
    assert f"1 taken by you: #{storm['db'].pk}." in body
    assert f"#{storm['web'].pk} skipped: The incident is already assigned to" in body


def test_bulk_assign_notifies_the_assignee(
    client, company_admin_a, technician_a, storm, django_capture_on_commit_callbacks
):
    client.force_login(company_admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            BULK, {"ids": [storm["db"].pk], "action": "assign", "assignee": technician_a.pk}
        )
    storm["db"].refresh_from_db()
    assert storm["db"].assigned_to == technician_a
    assert Notification.objects.filter(user=technician_a).exists()


def test_bulk_resolve_puts_one_note_on_every_incident(client, technician_a, storm):
    client.force_login(technician_a)
    ids = [storm["db"].pk, storm["web"].pk]
    client.post(BULK, {"ids": ids, "action": "resolve", "note": "Storage array replaced"})
    for pk in ids:
        event = IncidentEvent.objects.get(incident_id=pk, kind="status")
        assert event.text == "Storage array replaced" and event.actor == technician_a
    assert set(
        IncidentFactory._meta.model.objects.filter(pk__in=ids).values_list("status", flat=True)
    ) == {"resolved"}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"action": "resolve"}, "Select at least one incident."),
        ({"action": "resolve", "ids": "db"}, "Say how they were resolved"),
        ({"action": "assign", "ids": "db"}, "Choose who should work on them."),
        ({"action": "explode", "ids": "db"}, "Select a valid choice"),
    ],
)
def test_an_invalid_bulk_action_changes_nothing(client, technician_a, storm, data, error):
    client.force_login(technician_a)
    if "ids" in data:
        data = {**data, "ids": storm[data["ids"]].pk}
    body = client.post(BULK, data, follow=True).content.decode()
    assert error in body
    assert not IncidentEvent.objects.exists()


def test_bulk_actions_refuse_another_companys_incidents(client, technician_a, storm):
    client.force_login(technician_a)
    body = client.post(
        BULK, {"ids": [storm["db"].pk, storm["other"].pk], "action": "take"}, follow=True
    ).content.decode()
    assert "not yours to change" in body
    assert not IncidentEvent.objects.exists()


def test_bulk_actions_need_a_role_post_and_csrf(client, company_a, technician_a, storm):
    roleless = UserFactory()
    client.force_login(roleless)
    client.post(BULK, {"ids": [storm["db"].pk], "action": "take"})
    assert not IncidentEvent.objects.exists()
    client.force_login(technician_a)
    assert client.get(BULK).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(technician_a)
    assert strict.post(BULK, {"ids": [storm["db"].pk], "action": "take"}).status_code == 403


def test_bulk_next_must_be_the_incidents_page(client, technician_a, storm):
    client.force_login(technician_a)
    response = client.post(
        BULK, {"ids": [storm["db"].pk], "action": "take", "next": "https://evil.example/"}
    )
    assert response["Location"] == LIST


def test_the_form_pushes_the_short_url_and_the_live_refresh_none(client, technician_a, storm):
    client.force_login(technician_a)
    query = "q=srv&status=open&severity=&assignee=&tool=&since=&sort=score"
    pushed = client.get(f"{LIST}?{query}", **HTMX, HTTP_HX_TRIGGER="incident-search")
    assert pushed["HX-Push-Url"] == f"{LIST}?q=srv"
    live = client.get(f"{LIST}?q=srv", **HTMX, HTTP_HX_TRIGGER="incident-results")
    assert "HX-Push-Url" not in live
