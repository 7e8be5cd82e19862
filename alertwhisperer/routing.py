"""WebSocket routes."""

from django.urls import path

from apps.chat.routing import websocket_urlpatterns as chat_patterns
from apps.notifications.consumers import LiveConsumer

websocket_urlpatterns = [path("ws/live/", LiveConsumer.as_asgi()), *chat_patterns]
