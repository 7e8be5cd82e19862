# Indexes the incident lists and the API walk in their order (docs/decisions.md, issue 16).

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0008_search_trigram_indexes"),
        ("tenants", "0007_company_ping_signatures"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                condition=models.Q(("acknowledged_at__isnull", False)),
                fields=["company", "acknowledged_at"],
                name="incident_company_acknowledged",
            ),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(fields=["-last_alert_at", "-id"], name="incident_recent"),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                fields=["company", "-last_alert_at", "-id"], name="incident_company_recent"
            ),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                fields=["-priority_score", "-last_alert_at", "-id"], name="incident_score"
            ),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                condition=models.Q(("status__in", ("new", "in_progress"))),
                fields=["-priority_score", "-last_alert_at", "-id"],
                name="incident_open_score",
            ),
        ),
    ]
