from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from apps.notifications.models import Notification


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
