import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")
# A web request's queries stop after 30 s (settings, DATABASE_STATEMENT_TIMEOUT).
os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT", "30s")
application = get_wsgi_application()

from alertwhisperer import collector  # noqa: E402

collector.settle()
