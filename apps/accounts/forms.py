from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.tenants.models import Company


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an active account.",
    }


class UserAdminForm(forms.ModelForm):
    role = forms.ChoiceField(choices=Role.choices)
    password1 = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Required for a new user. Leave empty to keep the current password.",
    )

    class Meta:
        model = User
        fields = ("email", "full_name", "is_active")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.role:
            self.fields["role"].initial = self.instance.role.value

    def clean_email(self) -> str:
        return User.objects.normalize_email(self.cleaned_data["email"]).lower()

    def clean_password1(self) -> str:
        password = self.cleaned_data.get("password1", "")
        if not self.instance.pk and not password:
            raise forms.ValidationError("A new user needs a password.")
        if password:
            password_validation.validate_password(password, self.instance)
        return password


class TeamMemberForm(forms.ModelForm):
    """What the add and edit pages share: the role and companies the actor may give.

    ``roles`` and ``companies`` are the choices the actor's scope allows; a value outside
    them (a forged form) is refused with a message next to the field.
    """

    role = forms.ChoiceField(
        error_messages={"invalid_choice": "You cannot give the role “%(value)s”."}
    )
    companies = forms.ModelMultipleChoiceField(
        queryset=Company.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "You can only choose companies you manage."},
        help_text="Technicians and company admins work only in the companies ticked here.",
    )

    def __init__(
        self,
        *args: Any,
        roles: list[tuple[str, str]],
        companies: QuerySet[Company],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = roles
        self.fields["companies"].queryset = companies
        self.kept_companies: list[Company] = []

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        role, companies = cleaned.get("role"), cleaned.get("companies")
        if role is None or companies is None:
            return cleaned
        if role == Role.MSP_ADMIN and companies:
            self.add_error(
                "companies", "MSP admins work in every company: leave the companies unticked."
            )
        elif role != Role.MSP_ADMIN and not companies and not self.kept_companies:
            self.add_error(
                "companies",
                f"Choose at least one company: a {Role(role).label} works only in the "
                "companies they belong to.",
            )
        return cleaned


class TeamMemberCreateForm(TeamMemberForm):
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Confirm password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    field_order = ("email", "full_name", "role", "companies", "password1", "password2")

    class Meta:
        model = User
        fields = ("email", "full_name")
        labels = {"full_name": "Full name"}
        error_messages = {"email": {"unique": "An account with this email already exists."}}
        widgets = {
            "email": forms.EmailInput(attrs={"autocomplete": "off", "autofocus": True}),
            "full_name": forms.TextInput(attrs={"placeholder": "John Doe"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].initial = Role.TECHNICIAN
        companies = list(self.fields["companies"].queryset[:2])
        if len(companies) == 1:
            self.fields["companies"].initial = [companies[0].pk]

    def clean_email(self) -> str:
        return User.objects.normalize_email(self.cleaned_data["email"]).lower()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        password = cleaned.get("password1")
        if password and cleaned.get("password2") and password != cleaned["password2"]:
            self.add_error("password2", "The two passwords differ.")
        if password:
            candidate = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class TeamMemberEditForm(TeamMemberForm):
    """Name, role, companies, on-call duty and active flag of an existing account.

    Memberships of companies outside the actor's choices (an inactive company) are kept.
    Editing yourself, the role and active flag are read-only, and so are the companies
    unless you are an MSP admin: nobody locks themselves out.
    """

    on_call = forms.ModelMultipleChoiceField(
        queryset=Company.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "You can only choose companies you manage."},
    )

    class Meta:
        model = User
        fields = ("full_name", "is_active")
        labels = {"full_name": "Full name", "is_active": "Active (may log in)"}
        help_texts = {
            "is_active": "A deactivated account cannot log in or receive incidents; its "
            "history stays."
        }

    def __init__(self, *args: Any, actor: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = self.fields["companies"].queryset
        self.fields["on_call"].queryset = choices
        memberships = list(self.instance.memberships.select_related("company"))
        choice_ids = set(choices.values_list("pk", flat=True))
        self.kept_companies = [m.company for m in memberships if m.company_id not in choice_ids]
        self.fields["companies"].initial = [m.company_id for m in memberships]
        self.fields["on_call"].initial = [m.company_id for m in memberships if m.on_call]
        if self.instance.role is not None:
            self.fields["role"].initial = self.instance.role.value
        if self.instance.pk == actor.pk:
            self.fields["role"].disabled = True
            self.fields["is_active"].disabled = True
            if actor.role != Role.MSP_ADMIN:
                self.fields["companies"].disabled = True

    def company_rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        """(member checkbox, on-call checkbox) per company, for a two-column table."""
        return list(zip(self["companies"], self["on_call"], strict=True))

    def membership_companies(self) -> list[Company]:
        return [*self.cleaned_data["companies"], *self.kept_companies]

    def on_call_by_company(self) -> dict[int, bool]:
        on_call = {c.pk for c in self.cleaned_data["on_call"]}
        return {c.pk: c.pk in on_call for c in self.fields["on_call"].queryset}
