import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Resolving one URL imports the URLconf and every view module now, at process start, instead of
# during the first request each web process serves.
get_resolver().resolve("/healthz")
