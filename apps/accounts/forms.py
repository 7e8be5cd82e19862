from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts.models import User
from apps.accounts.roles import Role


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
