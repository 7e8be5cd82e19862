"""Forms of the incident page. They parse input; the services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.accounts.models import User
from apps.incidents.choices import IncidentStatus
from apps.incidents.models import Incident
from apps.incidents.selectors import incident_assignees
from apps.incidents.services import NOTE_MAX_LENGTH

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
