"""The webhook server's WSGI application (Procfile ``webhooks``; a reverse proxy sends
``/api/webhooks/`` to it): the webhook routes only, through the two middleware an API-key
endpoint needs (settings ``WEBHOOK_SERVER_*``). Sessions, CSRF, messages and htmx cost a
quarter of the CPU of a webhook request and serve nothing there."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")
# The webhook server: its own middleware, and WEB_STATEMENT_TIMEOUT (settings).
os.environ["AW_SERVER"] = "webhooks"
application = get_wsgi_application()

from alertwhisperer import collector  # noqa: E402

collector.settle()
