"""The audit log is append-only: no code path, and not even raw SQL, changes a row."""

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction

from apps.accounts.services import user_delete
from apps.audit.models import AuditLog, AuditLogImmutable
from apps.audit.services import record

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(company_a, msp_admin):
    return record(action="config_changed", actor=msp_admin, company=company_a, details={"a": 1})


def test_record_fills_actor_company_and_target(entry, company_a, msp_admin):
    assert entry.actor_repr == msp_admin.email
    assert entry.company_repr == company_a.name
    assert entry.details == {"a": 1}


def test_saving_an_existing_record_is_refused(entry):
    entry.details = {"a": 2}
    with pytest.raises(AuditLogImmutable):
        entry.save()
    entry.refresh_from_db()
    assert entry.details == {"a": 1}


def test_deleting_a_record_is_refused(entry):
    with pytest.raises(AuditLogImmutable):
        entry.delete()
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.all().delete()
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_queryset_update_is_refused(entry):
    with pytest.raises(AuditLogImmutable):
        AuditLog.objects.filter(pk=entry.pk).update(action="login")
    entry.refresh_from_db()
    assert entry.action == "config_changed"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditlog SET action = 'login' WHERE id = %s",
        "DELETE FROM audit_auditlog WHERE id = %s",
    ],
)
def test_the_database_itself_refuses_changes(entry, sql):
    assert connection.vendor == "postgresql", "make test runs on PostgreSQL"
    refused = (InternalError, ProgrammingError, IntegrityError)
    with pytest.raises(refused) as exc, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [entry.pk])
    assert "append-only" in str(exc.value)
    entry.refresh_from_db()
    assert entry.action == "config_changed"


def test_deleting_a_user_keeps_their_history(technician_a, msp_admin):
    record(action="login", actor=technician_a)
    user_id = technician_a.pk
    user_delete(user=technician_a, actor=msp_admin)
    kept = AuditLog.objects.get(action="login")
    assert kept.actor_id == user_id
    assert kept.actor_repr == "tech@acme.example"
    assert AuditLog.objects.filter(action="user_deleted", target_id=str(user_id)).exists()
