"""Users log in with their email; company membership says which tenants they work in."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils.functional import cached_property

from apps.accounts.roles import Role


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, email: str):
        """Log-in is case-insensitive: emails are stored lower-case."""
        return self.get(email=str(email).strip().lower())

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        user = self._create_user(email, password, **extra)
        from apps.accounts.services import user_set_role

        user_set_role(user=user, role=Role.MSP_ADMIN)
        return user


class User(AbstractUser):
    username = None
    first_name = None
    last_name = None
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA zone the console shows times in; empty: the browser's, else UTC.",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name or self.email).split(" ")[0]

    @cached_property
    def role(self) -> Role | None:
        """The user's role (the highest, should several groups be set)."""
        names = {g.name for g in self.groups.all()}
        for role in (Role.MSP_ADMIN, Role.COMPANY_ADMIN, Role.TECHNICIAN):
            if role.value in names:
                return role
        return None


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="memberships"
    )
    on_call = models.BooleanField(
        default=True,
        help_text="Technicians on call receive new incidents of this company, while it has no "
        "on-call schedule (apps.oncall; the schedule decides once there is one).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["company__name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "company"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.company}"
