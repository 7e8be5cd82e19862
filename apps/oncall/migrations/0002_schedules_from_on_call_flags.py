"""Each company whose technicians carry the on-call flag gets a schedule "On call" that
keeps them all on call at once, as the flag did: a layer-0 rotation of one member per
flagged active technician. The flag stays; it only matters for companies without a
schedule (docs/decisions.md, "On-call schedules replace the flag")."""

import datetime

from django.db import migrations

SCHEDULE_NAME = "On call"


def schedules_from_flags(apps, schema_editor):
    Membership = apps.get_model("accounts", "Membership")
    Schedule = apps.get_model("oncall", "Schedule")
    Rotation = apps.get_model("oncall", "Rotation")
    RotationMember = apps.get_model("oncall", "RotationMember")
    flagged: dict[int, list] = {}
    for membership in (
        Membership.objects.filter(
            on_call=True, user__is_active=True, user__groups__name="Technician"
        )
        .select_related("user")
        .order_by("company_id", "user_id")
    ):
        flagged.setdefault(membership.company_id, []).append(membership.user)
    today = datetime.date.today()
    for company_id, users in flagged.items():
        if Schedule.objects.filter(company_id=company_id).exists():
            continue
        schedule = Schedule.objects.create(company_id=company_id, name=SCHEDULE_NAME)
        for user in users:
            rotation = Rotation.objects.create(
                schedule=schedule,
                name=f"{user.full_name or user.email} (from the on-call flag)",
                layer=0,
                frequency="weekly",
                handoff_time=datetime.time(9, 0),
                handoff_weekday=0,
                start_date=today - datetime.timedelta(days=today.weekday() + 7),
            )
            RotationMember.objects.create(rotation=rotation, user=user, position=0)


class Migration(migrations.Migration):
    dependencies = [
        ("oncall", "0001_schedules_and_escalation"),
        ("accounts", "0006_on_call_flag_until_scheduled"),
    ]

    operations = [migrations.RunPython(schedules_from_flags, migrations.RunPython.noop)]
