"""Forms of the incident page. They parse input; the services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.accounts.models import User
from apps.incidents.choices import IncidentStatus
from apps.incidents.merging import BULK_MERGE
from apps.incidents.models import Incident
from apps.incidents.selectors import bulk_assignees, incident_assignees
from apps.incidents.services import (
    BULK_ACKNOWLEDGE,
    BULK_ASSIGN,
    BULK_RESOLVE,
    BULK_TAKE,
    NOTE_MAX_LENGTH,
)

NEXT_STATUS = {
    IncidentStatus.NEW: IncidentStatus.IN_PROGRESS,
    IncidentStatus.IN_PROGRESS: IncidentStatus.RESOLVED,
    IncidentStatus.RESOLVED: IncidentStatus.IN_PROGRESS,
}


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=IncidentStatus.choices, label="Status")
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX_LENGTH,
        label="Note",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What was done, what fixed it"}),
        help_text="Required to resolve. It goes on the timeline.",
    )

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].initial = NEXT_STATUS[IncidentStatus(incident.status)]


class AssigneeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj} · {obj.open_incidents} open"


class AssignForm(forms.Form):
    assignee = AssigneeChoiceField(
        queryset=User.objects.none(),
        label="Assign to",
        empty_label="Choose a person…",
        error_messages={
            "required": "Choose who should work on it.",
            "invalid_choice": "Choose an active technician or company admin of this company.",
        },
    )

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = incident_assignees(company_id=incident.company_id)
        self.fields["assignee"].initial = incident.assigned_to_id


class TakeForm(forms.Form):
    """No fields: "Take it" assigns the incident to whoever presses it."""


class NoteForm(forms.Form):
    text = forms.CharField(
        max_length=NOTE_MAX_LENGTH,
        label="Add a note",
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "What you found, what you tried, who you called"}
        ),
        error_messages={"required": "Write the note first."},
    )


class BulkForm(forms.Form):
    """Selected incidents of the Incidents page and what to do with all of them.
    ``incidents`` is the queryset the user may update: anything else is an invalid choice."""

    ids = forms.ModelMultipleChoiceField(
        queryset=Incident.objects.none(),
        error_messages={
            "required": "Select at least one incident.",
            "invalid_choice": "One of the selected incidents is not yours to change.",
            "invalid_pk_value": "Select incidents from the list.",
        },
    )
    action = forms.ChoiceField(
        choices=[
            (BULK_TAKE, "Take them"),
            (BULK_ACKNOWLEDGE, "Acknowledge"),
            (BULK_ASSIGN, "Assign to…"),
            (BULK_RESOLVE, "Resolve with a note"),
            (BULK_MERGE, "Merge into one"),
        ],
        label="Action",
    )
    into = forms.IntegerField(
        required=False,
        min_value=1,
        label="Merge into #",
        widget=forms.NumberInput(attrs={"placeholder": "the oldest"}),
        error_messages={"invalid": "Give the number of the incident to keep, like 42."},
    )
    assignee = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, label="Assignee", empty_label="Choose…"
    )
    note = forms.CharField(
        required=False,
        max_length=NOTE_MAX_LENGTH,
        label="Resolution note",
        widget=forms.TextInput(attrs={"placeholder": "What fixed them (required to resolve)"}),
    )

    def __init__(self, *args: Any, incidents, company_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, auto_id="bulk-%s", **kwargs)
        self.fields["ids"].queryset = incidents
        self.fields["assignee"].queryset = bulk_assignees(company_ids=company_ids)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("action") == BULK_ASSIGN and not data.get("assignee"):
            self.add_error("assignee", "Choose who should work on them.")
        if data.get("action") == BULK_RESOLVE and not data.get("note", "").strip():
            self.add_error("note", "Say how they were resolved: one note goes on every one.")
        if data.get("action") == BULK_MERGE and data.get("ids") is not None:
            self._clean_merge(data)
        return data

    def _clean_merge(self, data: dict[str, Any]) -> None:
        """Two or more incidents of one company; ``into`` one of them, else the oldest."""
        selected = sorted(data["ids"], key=lambda i: (i.first_alert_at, i.pk))
        companies = sorted({i.company.name for i in selected})
        if len(selected) < 2:
            self.add_error("ids", "Select at least two incidents to merge.")
        elif len(companies) > 1:
            self.add_error(
                "ids",
                "Incidents of different companies cannot be merged: the selection has "
                f"{', '.join(companies[:-1])} and {companies[-1]}. Select one company's.",
            )
        elif data.get("into") is not None and data["into"] not in {i.pk for i in selected}:
            self.add_error("into", f"#{data['into']} is not among the selected incidents.")
        else:
            data["into"] = data.get("into") or selected[0].pk
