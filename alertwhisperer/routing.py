"""WebSocket routes; each app's consumers are added here as they appear."""

websocket_urlpatterns: list = []
