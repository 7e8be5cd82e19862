from django.apps import AppConfig


class SilencesConfig(AppConfig):
    name = "apps.silences"
    verbose_name = "Silences and snoozes"

    def ready(self) -> None:
        from apps.notifications.services import register_suppressor
        from apps.silences.selectors import notification_is_quiet

        register_suppressor(notification_is_quiet)
