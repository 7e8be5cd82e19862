"""Forms of the runbook pages. The model says what makes a runbook valid (auto-approve only
at low risk, the health check's fields by type, the timeout's range); the forms add the
scope (only those the user may manage), the name's uniqueness in that scope, and the
YAML import's input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from apps.runbooks.catalog import (
    DEFAULT_EXIT_CODE,
    DEFAULT_HTTP_STATUS,
    MSP_WIDE,
    RUNBOOK_FIELDS,
    name_taken_message,
    runbook_name_taken,
)
from apps.runbooks.choices import Kind
from apps.runbooks.models import INSTANCE_PLACEHOLDER, Runbook
from apps.tenants.aws_links import PASSABLE_ROLE_PREFIX
from apps.tenants.models import Asset, AwsLink, Company

MSP_SCOPE = "msp"
MAX_YAML_BYTES = 1024 * 1024


class ScopeField(forms.ChoiceField):
    """MSP-wide (offered to MSP admins only) or one of the companies the user manages
    runbooks for; cleans to the Company, or None for MSP-wide."""

    def __init__(self, *, companies: Sequence[Company], allow_msp: bool, **kwargs: Any) -> None:
        self.companies = {str(c.pk): c for c in companies}
        choices = [(MSP_SCOPE, f"{MSP_WIDE} (every company without its own)")] if allow_msp else []
        choices += [(pk, c.name) for pk, c in self.companies.items()]
        super().__init__(choices=choices, **kwargs)

    def clean(self, value: Any) -> Company | None:
        value = super().clean(value)
        return None if value == MSP_SCOPE else self.companies[value]


def scope_value(company: Company | None) -> str:
    return MSP_SCOPE if company is None else str(company.pk)


class ActionsField(forms.CharField):
    """Shell commands, one per line; cleans to a list without blank lines."""

    widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value)
        return [line.strip() for line in text.splitlines() if line.strip()]


class RunbookForm(forms.ModelForm):
    actions = ActionsField(
        label="Actions",
        help_text="Shell or PowerShell: commands, one per line, run in order as root or "
        "SYSTEM by AWS-RunShellScript or AWS-RunPowerShellScript (or shown as manual steps "
        "without an AWS link). The run stops at the first failure.",
        required=False,  # the model says "give at least one", once
    )
    document_parameters = forms.JSONField(
        label="Automation parameters",
        required=False,
        help_text=f'JSON, e.g. {{"InstanceId": "{INSTANCE_PLACEHOLDER}"}}: each parameter '
        "a text or a list of texts.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
    )

    class Meta:
        model = Runbook
        fields = RUNBOOK_FIELDS
        labels = {
            "signature_pattern": "Trigger signature",
            "kind": "Kind",
            "document_name": "Automation document",
            "risk": "Risk",
            "auto_approve": "Run without approval (low risk only)",
            "health_check_type": "Health check",
            "health_check_url": "URL",
            "health_check_status": "Expected HTTP status",
            "health_check_command": "Command",
            "health_check_exit_code": "Expected exit code",
            "timeout_seconds": "Timeout (seconds)",
            "enabled": "Enabled (matches new incidents)",
        }
        help_texts = {
            "kind": "A Windows instance is sent PowerShell runbooks, a Linux one shell "
            "runbooks; Automation runbooks suit both.",
            "document_name": "For Automation: an AWS-owned document such as "
            "AWS-RestartEC2Instance, or one of the client's own.",
            "signature_pattern": "The alert signature it heals: exact (disk_full) or a glob "
            "(service_down:*). An exact pattern wins over a glob.",
            "health_check_url": "For an HTTP check: requested from the instance after the "
            "actions, e.g. http://localhost/healthz.",
            "health_check_status": f"For an HTTP check (default {DEFAULT_HTTP_STATUS}).",
            "health_check_command": "For a command check: run after the actions.",
            "health_check_exit_code": f"For a command check (default {DEFAULT_EXIT_CODE}).",
            "timeout_seconds": "30 to 7200. The run is stopped and marked timed out after it.",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "health_check_command": forms.TextInput(attrs={"class": "mono"}),
            "document_name": forms.TextInput(attrs={"class": "mono", "spellcheck": "false"}),
        }

    def __init__(
        self,
        *args: Any,
        companies: Sequence[Company],
        allow_msp: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.company if self.instance.company_id else None
        if current is not None and current not in companies:
            # A deactivated company: its runbook keeps its scope (the view checked the
            # user may change it).
            companies = [*companies, current]
        self.fields["scope"] = ScopeField(
            companies=companies,
            allow_msp=allow_msp,
            label="Scope",
            help_text="A company's own runbook wins over an MSP-wide one for the same signature.",
            initial=scope_value(self.instance.company) if self.instance.pk else None,
        )
        self.order_fields(["scope", *RUNBOOK_FIELDS])
        for name in ("health_check_status", "health_check_exit_code", "kind"):
            self.fields[name].required = False

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or Kind.SHELL

    def clean_document_parameters(self) -> Any:
        value = self.cleaned_data.get("document_parameters")
        return {} if value is None else value

    def clean_health_check_status(self) -> int:
        value = self.cleaned_data.get("health_check_status")
        return DEFAULT_HTTP_STATUS if value is None else value

    def clean_health_check_exit_code(self) -> int:
        value = self.cleaned_data.get("health_check_exit_code")
        return DEFAULT_EXIT_CODE if value is None else value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "scope" in cleaned:
            company = cleaned["scope"]
            self.instance.company = company
            name = cleaned.get("name")
            if name and runbook_name_taken(name=name, company=company, exclude_pk=self.instance.pk):
                self.add_error("name", name_taken_message(name, company))
        return cleaned


class RunbookImportForm(forms.Form):
    file = forms.FileField(
        label="YAML file",
        required=False,
        help_text="A .yaml or .yml file of up to 1 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".yaml,.yml,text/yaml"}),
    )
    text = forms.CharField(
        label="Or paste YAML",
        required=False,
        max_length=MAX_YAML_BYTES,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "mono"}),
        help_text="One runbook, a list of runbooks, or several documents separated by ---.",
    )
    replace = forms.BooleanField(
        label="Replace existing",
        required=False,
        help_text="Update a runbook of the same name in that scope instead of refusing.",
    )

    def __init__(
        self, *args: Any, companies: Sequence[Company], allow_msp: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scope"] = ScopeField(
            companies=companies,
            allow_msp=allow_msp,
            label="Import into",
            help_text="The scope every imported runbook gets.",
        )
        self.order_fields(["scope", "file", "text", "replace"])

    def clean_file(self) -> str:
        upload: UploadedFile | None = self.cleaned_data.get("file")
        if upload is None:
            return ""
        if upload.size > MAX_YAML_BYTES:
            raise forms.ValidationError("The file is larger than 1 MB.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise forms.ValidationError("The file is not UTF-8 text.") from error

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        uploaded, pasted = cleaned.get("file"), cleaned.get("text", "")
        if "file" in cleaned and "text" in cleaned:
            if uploaded and pasted.strip():
                raise forms.ValidationError("Upload a file or paste YAML, not both.")
            if not uploaded and not pasted.strip():
                raise forms.ValidationError("Upload a YAML file or paste YAML.")
        cleaned["yaml"] = uploaded or pasted
        return cleaned


class AwsLinkForm(forms.ModelForm):
    class Meta:
        model = AwsLink
        fields = ["region", "role_arn", "export_bucket", "export_prefix"]
        labels = {"role_arn": "Role ARN"}
        help_texts = {
            "kind": "A Windows instance is sent PowerShell runbooks, a Linux one shell "
            "runbooks; Automation runbooks suit both.",
            "document_name": "For Automation: an AWS-owned document such as "
            "AWS-RestartEC2Instance, or one of the client's own.",
            "region": "Where the company's instances run, e.g. us-east-1.",
            "role_arn": "The role Alert Whisperer assumes, e.g. "
            "arn:aws:iam::123456789012:role/AlertWhisperer. Leave it empty to save the link "
            "first and get the External ID for the role's trust policy; empty also means "
            "webhook-only mode (runbooks become guided manual steps).",
            "export_bucket": "A bucket in the company's account that receives the day's "
            "compliance snapshot as CSV and JSON, through the same role. Empty: no export.",
            "export_prefix": "Where in the bucket: each day goes under <prefix>YYYY-MM-DD/.",
        }
        widgets = {
            "role_arn": forms.TextInput(attrs={"class": "mono", "spellcheck": "false"}),
            "export_bucket": forms.TextInput(attrs={"class": "mono", "spellcheck": "false"}),
            "export_prefix": forms.TextInput(attrs={"class": "mono", "spellcheck": "false"}),
        }


class ActivationForm(forms.Form):
    """CreateActivation's inputs: the role the servers register under (with the
    AmazonSSMManagedInstanceCore policy and ssm.amazonaws.com trusted), how many, how long."""

    iam_role = forms.RegexField(
        label="IAM role of the servers",
        regex=rf"^{PASSABLE_ROLE_PREFIX}[\w+=,.@-]{{1,{64 - len(PASSABLE_ROLE_PREFIX)}}}$",
        initial=f"{PASSABLE_ROLE_PREFIX}SSMServers",
        error_messages={
            "invalid": f"Give the role's name (not its ARN), starting with "
            f"{PASSABLE_ROLE_PREFIX}: the permissions policy lets Alert Whisperer pass only "
            f"roles named {PASSABLE_ROLE_PREFIX}… to Systems Manager."
        },
        help_text=f"A role in the client's account named {PASSABLE_ROLE_PREFIX}…, that trusts "
        "ssm.amazonaws.com and has the AmazonSSMManagedInstanceCore policy.",
        widget=forms.TextInput(attrs={"class": "mono", "spellcheck": "false"}),
    )
    registration_limit = forms.IntegerField(
        label="Servers it may register", min_value=1, max_value=1000, initial=10
    )
    expires_in_days = forms.IntegerField(
        label="Expires after (days)", min_value=1, max_value=30, initial=7
    )
    default_instance_name = forms.RegexField(
        label="Default instance name",
        regex=r"^[\w.-]{1,256}$",
        error_messages={"invalid": "Letters, digits, _ . - only."},
        help_text="What the servers are called in Systems Manager until they are renamed.",
    )


class AdoptForm(forms.Form):
    instance_id = forms.CharField(
        max_length=20, validators=[Asset.instance_id_validator], widget=forms.HiddenInput
    )
