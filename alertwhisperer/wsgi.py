import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")
# A web server: its requests' queries stop after WEB_STATEMENT_TIMEOUT (settings).
os.environ.setdefault("AW_SERVER", "web")
application = get_wsgi_application()

from alertwhisperer import collector  # noqa: E402

collector.settle()
