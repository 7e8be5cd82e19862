"""WebSocket routes of the chat."""

from django.urls import path

from apps.chat.consumers import ChatConsumer

websocket_urlpatterns = [path("ws/chat/<slug:slug>/", ChatConsumer.as_asgi())]
