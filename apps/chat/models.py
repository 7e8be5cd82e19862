"""Team chat: one room per company, its messages, and how far each user has read."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThan, LessThanOrEqual

MAX_BODY_LENGTH = 4000


class ChatMessage(models.Model):
    company = models.ForeignKey(
        "tenants.Company", on_delete=models.CASCADE, related_name="chat_messages"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(max_length=MAX_BODY_LENGTH)
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="chat_messages",
        help_text="The incident the message is about (always one of the room's company).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["company", "-id"], name="chat_message_company_id")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(GreaterThan(Length("body"), 0))
                & models.Q(LessThanOrEqual(Length("body"), MAX_BODY_LENGTH)),
                name="chat_message_body_length",
            )
        ]

    def __str__(self) -> str:
        return f"Message {self.pk} in company {self.company_id}"


class ChatReadState(models.Model):
    """The newest message of a company's room the user has seen; unread = newer messages
    by others."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    company = models.ForeignKey("tenants.Company", on_delete=models.CASCADE, related_name="+")
    last_read_message_id = models.PositiveBigIntegerField(default=0)
    last_read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "company"], name="chat_read_state_once")
        ]

    def __str__(self) -> str:
        return f"User {self.user_id} read company {self.company_id} to {self.last_read_message_id}"
