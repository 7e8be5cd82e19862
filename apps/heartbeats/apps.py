from django.apps import AppConfig


class HeartbeatsConfig(AppConfig):
    name = "apps.heartbeats"
    label = "heartbeats"
