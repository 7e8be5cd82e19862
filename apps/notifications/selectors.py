from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from apps.notifications.models import Channel, Delivery, Notification


def notifications_of(*, user_id: int) -> QuerySet[Notification]:
    """A user's own notifications (nobody reads anyone else's), newest first."""
    return Notification.objects.filter(user_id=user_id)


def notifications_for_bell(*, user_id: int, limit: int) -> list[Notification]:
    """The bell's dropdown: the latest notifications, unread ones first."""
    unread_first = ExpressionWrapper(Q(read_at__isnull=True), output_field=BooleanField())
    return list(
        notifications_of(user_id=user_id).order_by(unread_first.desc(), "-created_at", "-id")[
            :limit
        ]
    )


def unread_count(*, user_id: int) -> int:
    return notifications_of(user_id=user_id).filter(read_at__isnull=True).count()


def deliveries_for_incident(*, incident_id: int) -> list[Delivery]:
    """An incident's delivery log (its page has checked the viewer sees the incident)."""
    return list(
        Delivery.objects.filter(incident_id=incident_id)
        .select_related("channel", "recipient")
        .order_by("created_at", "id")[:100]
    )


def channels_of(*, user_id: int) -> QuerySet[Channel]:
    return Channel.objects.filter(owner_id=user_id).prefetch_related("companies")


def company_channels(*, company_ids) -> QuerySet[Channel]:
    return Channel.objects.filter(company_id__in=company_ids).select_related("company")
