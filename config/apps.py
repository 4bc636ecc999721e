import sys

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class BerthAdminConfig(AdminConfig):
    """The Django admin as Berth's operator console, with a dashboard on its index page."""

    default_site = "config.admin_site.BerthAdminSite"


class BerthConfig(AppConfig):
    """Project-wide start-up: Berth's deployment checks; on the embedded default, the periodic tasks
    run in-process."""

    name = "config"
    verbose_name = "Berth"

    def ready(self):
        from django.conf import settings

        from . import checks  # noqa: F401 - registers the deployment checks

        # Never under pytest: tests call tasks themselves and must not race a background thread.
        if settings.BERTH_IN_PROCESS_BEAT and "pytest" not in sys.modules:
            from .beat import start_in_process_beat

            start_in_process_beat()
