"""One ASGI application: HTTP through Django, WebSockets through Channels consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")
# Each ASGI request runs its view in a thread of its own: a persistent connection would
# stay open after it, unused, until it expired (docs/decisions.md, session 20).
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
# A web server: its requests' queries stop after WEB_STATEMENT_TIMEOUT (settings).
os.environ.setdefault("AW_SERVER", "web")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from alertwhisperer.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

from alertwhisperer import collector  # noqa: E402

collector.settle()
