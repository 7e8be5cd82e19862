import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alertwhisperer.settings")
application = get_wsgi_application()

from alertwhisperer import collector  # noqa: E402

collector.settle()
