from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "apps.common"
    label = "common"

    def ready(self) -> None:
        from django.db.models import Field, ForeignObject

        from apps.common.db import AnyOf

        Field.register_lookup(AnyOf)
        ForeignObject.register_lookup(AnyOf)
