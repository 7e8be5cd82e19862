"""WebSocket routes of the chat (filled in by the chat consumer)."""

websocket_urlpatterns: list = []
