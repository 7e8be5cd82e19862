"""The runbook catalog: which runbooks a user sees, creating, changing, disabling and
deleting them (each change audited as ``runbook_changed``), and their YAML form, in the
shape of the product guide, for export and import.

A runbook's scope is its company, or None for an MSP-wide runbook. Names are unique per
scope (the database holds that; the forms and the import say so first, in words).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, ProtectedError, QuerySet, Subquery

from apps.accounts.permissions import scope
from apps.audit.choices import AuditAction
from apps.audit.services import record
from apps.common.errors import ApplicationError, Conflict
from apps.runbooks.choices import HealthCheckType, Kind, Risk
from apps.runbooks.models import Runbook, RunbookExecution
from apps.tenants.models import Company

MSP_WIDE = "MSP-wide"
MAX_IMPORT_RUNBOOKS = 200
DEFAULT_TIMEOUT_SECONDS = 300
DEFAULT_HTTP_STATUS = 200
DEFAULT_EXIT_CODE = 0

# The YAML keys of a runbook document, in the order they are written.
DOCUMENT_KEYS = (
    "name",
    "description",
    "signature",
    "risk_level",
    "auto_approve",
    "kind",
    "actions",
    "document",
    "parameters",
    "health_check",
    "timeout_seconds",
    "enabled",
)
HEALTH_CHECK_KEYS = {
    HealthCheckType.NONE: ("type",),
    HealthCheckType.HTTP: ("type", "url", "status"),
    HealthCheckType.COMMAND: ("type", "command", "exit_code"),
}
# The fields a runbook document sets.
RUNBOOK_FIELDS = (
    "name",
    "description",
    "signature_pattern",
    "risk",
    "auto_approve",
    "kind",
    "actions",
    "document_name",
    "document_parameters",
    "health_check_type",
    "health_check_url",
    "health_check_status",
    "health_check_command",
    "health_check_exit_code",
    "timeout_seconds",
    "enabled",
)
# Where a model field's validation error points in a YAML document.
YAML_KEY_OF_FIELD = {
    "signature_pattern": "signature",
    "risk": "risk_level",
    "document_name": "document",
    "document_parameters": "parameters",
    "health_check_type": "health_check.type",
    "health_check_url": "health_check.url",
    "health_check_status": "health_check.status",
    "health_check_command": "health_check.command",
    "health_check_exit_code": "health_check.exit_code",
}


class RunbookInUse(Conflict):
    code = "runbook_in_use"


class RunbookImportError(ApplicationError):
    """Nothing was imported; ``problems`` says what to fix, one line each."""

    code = "runbook_import_invalid"

    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        super().__init__(
            f"Nothing was imported: {count} problem{'s' if count != 1 else ''} to fix.",
            fields={"yaml": problems},
        )
        self.problems = problems


@dataclass(frozen=True)
class ImportResult:
    created: list[Runbook]
    updated: list[Runbook]


def scope_label(company: Company | None) -> str:
    return company.name if company is not None else MSP_WIDE


# --- Reading ----------------------------------------------------------------------------------


def runbooks_visible_to(user: Any) -> QuerySet[Runbook]:
    """MSP-wide runbooks and those of the companies ``user`` may see."""
    return scope(Runbook.objects.all(), user) | Runbook.objects.filter(company__isnull=True)


def runbooks_with_last_execution(queryset: QuerySet[Runbook], *, user: Any) -> QuerySet[Runbook]:
    """``queryset`` annotated with ``last_status`` and ``last_run_at`` of its latest
    execution, counting only executions of companies ``user`` may see (an MSP-wide
    runbook's runs elsewhere are not theirs to know)."""
    executions = scope(RunbookExecution.objects.filter(runbook=OuterRef("pk")), user)
    latest = executions.order_by("-created_at", "-id")
    return queryset.annotate(
        last_status=Subquery(latest.values("status")[:1]),
        last_run_at=Subquery(latest.values("created_at")[:1]),
    )


def runbook_name_taken(
    *, name: str, company: Company | None, exclude_pk: int | None = None
) -> bool:
    others = Runbook.objects.filter(company=company, name=name)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    return others.exists()


def name_taken_message(
    name: str, company: Company | None, *, hint: str = "Choose another name."
) -> str:
    where = "among the MSP-wide runbooks" if company is None else f"in {company.name}"
    return f"A runbook named “{name}” already exists {where}. {hint}"


# --- Writing ----------------------------------------------------------------------------------


def _audit(runbook: Runbook, /, *, change: str, actor: Any, **details: Any) -> None:
    record(
        action=AuditAction.RUNBOOK_CHANGED,
        actor=actor,
        company=runbook.company,
        target=runbook,
        details={"change": change, "scope": scope_label(runbook.company), **details},
    )


def _field_value(runbook: Runbook, name: str) -> Any:
    if name == "scope":
        return scope_label(runbook.company)
    value = getattr(runbook, name)
    return value if isinstance(value, str | int | bool | list | type(None)) else str(value)


@transaction.atomic
def runbook_create(*, runbook: Runbook, actor: Any = None) -> Runbook:
    """Save a new, validated ``runbook``."""
    runbook.created_by = actor if getattr(actor, "is_authenticated", False) else None
    runbook.save()
    _audit(runbook, change="created", actor=actor, runbook=runbook_document(runbook))
    return runbook


@transaction.atomic
def runbook_update(*, runbook: Runbook, changed: Iterable[str], actor: Any = None) -> Runbook:
    """Save edits to ``runbook``; ``changed`` names the changed fields ("scope" for the
    company), which the audit record lists with their new values."""
    runbook.save()
    changed = sorted(changed)
    if changed:
        _audit(
            runbook,
            change="updated",
            actor=actor,
            changed={name: _field_value(runbook, name) for name in changed},
        )
    return runbook


@transaction.atomic
def runbook_disable(*, runbook: Runbook, actor: Any = None) -> Runbook:
    """Stop ``runbook`` from matching new incidents; its executions stay."""
    if runbook.enabled:
        runbook.enabled = False
        runbook.save(update_fields=["enabled", "updated_at"])
        _audit(runbook, change="updated", actor=actor, changed={"enabled": False})
    return runbook


def deletion_refusal(*, runbook: Runbook) -> str:
    """Why ``runbook`` cannot be deleted ("" when it can): its executions keep it."""
    count = runbook.executions.count()
    if not count:
        return ""
    runs = "once" if count == 1 else f"{count} times"
    return (
        f"“{runbook.name}” has run {runs}, and those executions keep their history, so it "
        "cannot be deleted. Disable it instead: it stops matching new incidents."
    )


def runbook_delete(*, runbook: Runbook, actor: Any = None) -> None:
    """Delete ``runbook``; refused with RunbookInUse once it has executions."""
    refusal = deletion_refusal(runbook=runbook)
    if refusal:
        raise RunbookInUse(refusal)
    try:
        with transaction.atomic():
            _audit(runbook, change="deleted", actor=actor, runbook=runbook_document(runbook))
            runbook.delete()
    except (ProtectedError, IntegrityError) as error:  # an execution started meanwhile
        raise RunbookInUse(deletion_refusal(runbook=runbook)) from error


# --- YAML -------------------------------------------------------------------------------------


def runbook_document(runbook: Runbook) -> dict[str, Any]:
    """``runbook`` as a YAML document of the product guide's shape. The health check is
    left out when there is none, ``enabled`` when it is true, ``kind`` for shell runbooks
    (the guide's original shape); an Automation runbook has a document and parameters
    instead of actions."""
    document: dict[str, Any] = {
        "name": runbook.name,
        "description": runbook.description,
        "signature": runbook.signature_pattern,
        "risk_level": runbook.risk,
        "auto_approve": runbook.auto_approve,
    }
    if runbook.kind != Kind.SHELL:
        document["kind"] = runbook.kind
    if runbook.kind == Kind.AUTOMATION:
        document["document"] = runbook.document_name
        document["parameters"] = dict(runbook.document_parameters)
    else:
        document["actions"] = list(runbook.actions)
    if runbook.health_check_type == HealthCheckType.HTTP:
        document["health_check"] = {
            "type": HealthCheckType.HTTP.value,
            "url": runbook.health_check_url,
            "status": runbook.health_check_status,
        }
    elif runbook.health_check_type == HealthCheckType.COMMAND:
        document["health_check"] = {
            "type": HealthCheckType.COMMAND.value,
            "command": runbook.health_check_command,
            "exit_code": runbook.health_check_exit_code,
        }
    document["timeout_seconds"] = runbook.timeout_seconds
    if not runbook.enabled:
        document["enabled"] = False
    return document


def _dump(data: Any, *, many: bool) -> str:
    options = {"sort_keys": False, "allow_unicode": True, "default_flow_style": False}
    if many:
        return yaml.safe_dump_all(data, explicit_start=True, **options)
    return yaml.safe_dump(data, **options)


def runbook_to_yaml(runbook: Runbook) -> str:
    return _dump(runbook_document(runbook), many=False)


def runbooks_to_yaml(runbooks: Iterable[Runbook]) -> str:
    """One YAML document per runbook (``---`` between them)."""
    return _dump([runbook_document(r) for r in runbooks], many=True)


def _load_documents(text: str) -> list[Any]:
    """The runbook documents of ``text``: each YAML document is one runbook or a list of
    them; empty documents are skipped."""
    try:
        loaded = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise RunbookImportError([f"The YAML could not be read: {problem}{where}."]) from error
    except RecursionError as error:
        raise RunbookImportError(
            ["The YAML could not be read: it is nested too deeply."]
        ) from error
    documents: list[Any] = []
    for item in loaded:
        if item is not None:
            documents.extend(item if isinstance(item, list) else [item])
    if not documents:
        raise RunbookImportError(["The YAML holds no runbook."])
    if len(documents) > MAX_IMPORT_RUNBOOKS:
        raise RunbookImportError(
            [
                f"The YAML holds {len(documents)} runbooks; import at most "
                f"{MAX_IMPORT_RUNBOOKS} at a time."
            ]
        )
    return documents


def _plain_text(value: Any) -> str | None:
    """A YAML scalar as stripped text ("" for nothing), or None when it is not text."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else None


@dataclass
class _Reader:
    """Typed reads from one mapping of a document, collecting "key: message" problems."""

    mapping: dict[str, Any]
    prefix: str = ""
    problems: list[str] = field(default_factory=list)

    def _get(self, key: str, default: Any, *, required: bool) -> Any:
        if key not in self.mapping or self.mapping[key] is None:
            if required:
                self.problems.append(f"{self.prefix}{key}: is required.")
            return default
        return self.mapping[key]

    def _wrong(self, key: str, expected: str) -> None:
        self.problems.append(f"{self.prefix}{key}: must be {expected}.")

    def text(self, key: str, *, required: bool = False) -> str:
        value = _plain_text(self.mapping.get(key))
        if value is None:
            self._wrong(key, "text")
            return ""
        if required and not value:
            self.problems.append(f"{self.prefix}{key}: is required.")
        return value

    def flag(self, key: str, *, default: bool) -> bool:
        value = self._get(key, default, required=False)
        if not isinstance(value, bool):
            self._wrong(key, "true or false")
            return default
        return value

    def number(self, key: str, *, default: int) -> int:
        value = self._get(key, default, required=False)
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(key, "a whole number")
            return default
        return value

    def choice(self, key: str, choices: list[str], *, default: str, required: bool) -> str:
        value = self._get(key, default, required=required)
        if value not in choices:
            self._wrong(key, "one of " + ", ".join(choices))
            return default
        return value

    def commands(self, key: str, *, required: bool = True) -> list[str]:
        value = self._get(key, [], required=required)
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            self._wrong(key, "a list of commands")
            return []
        return [c.strip() for c in value]

    def parameters(self, key: str) -> dict[str, Any]:
        """Automation parameters: name to text or a list of texts (numbers become text)."""
        value = self._get(key, {}, required=False)
        if not isinstance(value, dict):
            self._wrong(key, "a mapping of parameter names to values")
            return {}
        parameters: dict[str, Any] = {}
        for name, item in value.items():
            values = [_plain_text(v) for v in (item if isinstance(item, list) else [item])]
            if not isinstance(name, str) or any(v is None for v in values):
                self._wrong(f"{key}.{name}", "text or a list of texts")
                continue
            parameters[name] = values if isinstance(item, list) else values[0]
        return parameters

    def unknown_keys(self, allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        for key in self.mapping:
            if key not in allowed:
                self.problems.append(
                    f"{self.prefix}{key}: unknown field (expected {', '.join(allowed)})."
                )


def _apply_health_check(runbook: Runbook, reader: _Reader) -> None:
    value = reader.mapping.get("health_check")
    runbook.health_check_type = HealthCheckType.NONE
    if value is None:
        return
    if not isinstance(value, dict):
        reader.problems.append("health_check: must be a mapping with a type.")
        return
    check = _Reader(value, prefix="health_check.", problems=reader.problems)
    if value.get("type") in HealthCheckType.values:  # the type says which keys belong
        check.unknown_keys(HEALTH_CHECK_KEYS[HealthCheckType(value["type"])])
    kind = check.choice(
        "type", list(HealthCheckType.values), default=HealthCheckType.NONE, required=True
    )
    runbook.health_check_type = kind
    if kind == HealthCheckType.HTTP:
        runbook.health_check_url = check.text("url", required=True)
        runbook.health_check_status = check.number("status", default=DEFAULT_HTTP_STATUS)
    elif kind == HealthCheckType.COMMAND:
        runbook.health_check_command = check.text("command", required=True)
        runbook.health_check_exit_code = check.number("exit_code", default=DEFAULT_EXIT_CODE)


def _apply_document(runbook: Runbook, document: dict[str, Any]) -> list[str]:
    """Set ``runbook``'s fields from ``document`` and validate it like the form does
    (except the name's uniqueness); returns the problems as "key: message"."""
    reader = _Reader(document)
    reader.unknown_keys(DOCUMENT_KEYS)
    runbook.name = reader.text("name", required=True)
    runbook.description = reader.text("description")
    runbook.signature_pattern = reader.text("signature", required=True)
    runbook.risk = reader.choice("risk_level", list(Risk.values), default=Risk.LOW, required=True)
    runbook.auto_approve = reader.flag("auto_approve", default=False)
    runbook.kind = reader.choice("kind", list(Kind.values), default=Kind.SHELL, required=False)
    automation = runbook.kind == Kind.AUTOMATION
    runbook.actions = reader.commands("actions", required=not automation)
    runbook.document_name = reader.text("document", required=automation)
    runbook.document_parameters = reader.parameters("parameters")
    _apply_health_check(runbook, reader)
    runbook.timeout_seconds = reader.number("timeout_seconds", default=DEFAULT_TIMEOUT_SECONDS)
    runbook.enabled = reader.flag("enabled", default=True)
    if reader.problems:
        return reader.problems
    try:
        runbook.full_clean(
            exclude=["company", "created_by"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as error:
        return [
            f"{YAML_KEY_OF_FIELD.get(name, name)}: {message}"
            if name != NON_FIELD_ERRORS
            else message
            for name, messages in error.message_dict.items()
            for message in messages
        ]
    return []


def _document_name(document: Any) -> str:
    return (_plain_text(document.get("name")) or "") if isinstance(document, dict) else ""


def _snapshot(runbook: Runbook) -> dict[str, Any]:
    return {name: getattr(runbook, name) for name in RUNBOOK_FIELDS}


def runbook_import(
    *, text: str, company: Company | None, replace: bool, actor: Any = None
) -> ImportResult:
    """Import the runbooks of ``text`` (YAML) into ``company``'s scope (None: MSP-wide).

    All or nothing: every document is validated first, and any problem raises
    RunbookImportError naming the document and the field. A name that exists in the scope
    updates that runbook when ``replace`` is true and is a problem otherwise.
    """
    documents = _load_documents(text)
    names = [_document_name(d) for d in documents]
    existing = {
        r.name: r for r in Runbook.objects.filter(company=company, name__in=filter(None, names))
    }
    problems: list[str] = []
    seen: dict[str, int] = {}
    plan: list[tuple[Runbook, dict[str, Any] | None]] = []
    for index, (document, name) in enumerate(zip(documents, names, strict=True), start=1):
        if not isinstance(document, dict):
            problems.append(
                f"Document {index}: must be a mapping of runbook fields (name, signature, "
                "risk_level, actions, …)."
            )
            continue
        target = existing.get(name) if name else None
        before = _snapshot(target) if target is not None else None
        runbook = target if target is not None else Runbook(company=company)
        found = _apply_document(runbook, document)
        if target is not None and not replace:
            hint = "Tick “Replace existing” to update it."
            found.append(f"name: {name_taken_message(name, company, hint=hint)}")
        if name and name in seen:
            found.append(f"name: “{name}” is also the name of document {seen[name]}.")
        seen.setdefault(name, index)
        label = f"Document {index}" + (f" (“{name}”)" if name else "")
        problems.extend(f"{label}: {problem}" for problem in found)
        plan.append((runbook, before))
    if problems:
        raise RunbookImportError(problems)
    try:
        return _save_import(plan, actor=actor)
    except IntegrityError as error:
        raise RunbookImportError(
            ["A runbook of the same name was saved in this scope while importing. Try again."]
        ) from error


@transaction.atomic
def _save_import(plan: list[tuple[Runbook, dict[str, Any] | None]], *, actor: Any) -> ImportResult:
    result = ImportResult(created=[], updated=[])
    for runbook, before in plan:
        if before is None:
            runbook.created_by = actor if getattr(actor, "is_authenticated", False) else None
            runbook.save()
            _audit(
                runbook,
                change="created",
                actor=actor,
                imported=True,
                runbook=runbook_document(runbook),
            )
            result.created.append(runbook)
            continue
        runbook.save()
        after = _snapshot(runbook)
        changed = {name: value for name, value in after.items() if value != before[name]}
        if changed:
            _audit(runbook, change="updated", actor=actor, imported=True, changed=changed)
        result.updated.append(runbook)
    return result
