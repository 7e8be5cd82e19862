from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "apps.ops"
    label = "ops"
    verbose_name = "Platform operations"

    def ready(self) -> None:
        from apps.ops import receivers

        receivers.connect()
