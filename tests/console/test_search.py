"""The Incidents page's search on PostgreSQL: trigram GIN indexes (on the incidents' text
table) that the query really uses (EXPLAIN), and results that stay exact substring
matches, scoped to the viewer."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.incidents.filters import IncidentFilters
from apps.incidents.selectors import incident_search
from tests.incidents.factories import AlertFactory, IncidentFactory
from tests.test_settings import run_python

pytestmark = pytest.mark.django_db
LIST = reverse("incidents:list")


def plan(queryset) -> str:
    """The plan with sequential scans priced out: it shows whether an index *can* serve
    each condition (with a few test rows the planner would rightly prefer a scan)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE incidents_incident; ANALYZE incidents_incidenttext; ANALYZE alerts_alert"
        )
        cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


@pytest.fixture
def many(company_a, company_b):
    for n in range(40):
        incident = IncidentFactory(company=company_a, asset_name=f"srv-{n:03d}")
        AlertFactory(incident=incident, message=f"disk {n} % full", labels={"rack": f"r{n}"})
    db = IncidentFactory(company=company_a, asset_name="srv-db-01", signature="disk_full")
    AlertFactory(
        incident=db, message="/var is 100% full", tool_source="Zabbix", labels={"team": "dba"}
    )
    other = IncidentFactory(company=company_b, asset_name="srv-db-01", signature="disk_full")
    return {"db": db, "other": other}


@pytest.mark.parametrize(
    "index",
    [
        "incident_text_title_trgm",
        "incident_text_asset_name_trgm",
        "incident_text_signature_trgm",
    ],
)
def test_the_search_is_served_by_the_trigram_indexes(many, technician_a, company_a, index):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:
            pytest.skip("this PostgreSQL has no pg_trgm (pgserver's): the search scans")
    filters = IncidentFilters(q="srv-db-01", status="all")
    incidents = incident_search(company_ids=[company_a.pk], filters=filters, user=technician_a)
    assert index in plan(incidents)
    assert list(incidents) == [many["db"]]


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("srv-db-01", True),  # host
        ("DISK_FULL", True),  # signature, any case
        ("100%", True),  # message, with a LIKE wildcard taken literally
        ("10_%", False),
        ("zabbix", True),  # tool
        ('"team": "dba"', True),  # labels
        ("nothing-like-it", False),
    ],
)
def test_search_matches_substrings_literally(client, many, technician_a, q, found):
    client.force_login(technician_a)
    body = client.get(LIST, {"q": q, "status": "all"}).content.decode()
    assert (f'data-incident="{many["db"].pk}"' in body) is found
    assert f'data-incident="{many["other"].pk}"' not in body


@pytest.mark.parametrize("who", ["msp_admin", "company_admin_a", "technician_a", "technician_b"])
def test_search_by_host_is_scoped_for_every_role(request, client, many, who):
    client.force_login(request.getfixturevalue(who))
    body = client.get(LIST, {"q": "srv-db-01"}).content.decode()
    sees_a = who != "technician_b"
    sees_b = who in ("msp_admin", "technician_b")
    assert (f'data-incident="{many["db"].pk}"' in body) is sees_a
    assert (f'data-incident="{many["other"].pk}"' in body) is sees_b


def test_alerts_text_is_searched_over_the_time_chosen_incidents_text_at_any_age(
    client, technician_a, company_a
):
    """An alert's message is matched within the last day unless a longer time is chosen;
    the incident's own host matches whatever its age (docs/decisions.md, "The search text
    kept apart from the incident")."""
    old = timezone.now() - timedelta(days=3)
    incident = IncidentFactory(
        company=company_a,
        asset_name="srv-archive-09",
        first_alert_at=old,
        last_alert_at=old,
    )
    AlertFactory(incident=incident, message="tape library jammed", event_time=old)
    client.force_login(technician_a)

    def found(**query) -> bool:
        body = client.get(LIST, {"status": "all", **query}).content.decode()
        return f'data-incident="{incident.pk}"' in body

    assert found(q="srv-archive-09")
    assert not found(q="tape library")
    assert found(q="tape library", since="7d")
    assert "alerts' messages, tools and labels of the time chosen, or the last 24h" in (
        client.get(LIST).content.decode()
    )


EMBEDDED_SEARCH = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from apps.accounts.models import User
from apps.incidents.filters import IncidentFilters
from apps.incidents.selectors import incident_search
from tests.incidents.factories import AlertFactory, IncidentFactory
incident = IncidentFactory(asset_name="srv-db-01")
AlertFactory(incident=incident, message="/var is 100% full")
user = User.objects.create(email="tech@example.com")
for q in ("srv-db-01", "100% full", f"#{incident.pk}", "nothing-like-it"):
    found = incident_search(
        company_ids=[incident.company_id], filters=IncidentFilters(q=q, status="all"), user=user
    )
    print(q, [i.pk == incident.pk for i in found])
"""


def test_the_embedded_mode_searches_too(tmp_path):
    """SQLite (``make run``) reads the incidents' own text and refuses ORDER BY inside the
    search's UNION: the same search runs there."""
    result = run_python(EMBEDDED_SEARCH, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        "srv-db-01 [True]",
        "100% full [True]",
        "#1 [True]",
        "nothing-like-it []",
    ]


def test_the_search_reads_incidents_by_their_matches(many, technician_a, company_a):
    """The matches are one set the incidents are read by, not sets each incident is tested
    against: so tested, a search matching nothing walked all 2 M incidents (10 s p99 at ten
    million alerts, bench/README.md, "Session 25")."""
    filters = IncidentFilters(q="nothing-like-it", status="all")
    incidents = incident_search(company_ids=[company_a.pk], filters=filters, user=technician_a)
    explained = plan(incidents)
    assert "OR (hashed SubPlan" not in explained
    assert "Append" in explained
    assert list(incidents) == []
