"""A workspace's last activity: what the idle stopper reads and the workspace list shows."""

from datetime import timedelta

from django.utils import timezone

from . import cache
from .models import Workspace

# A burst of saves is one row update and one list invalidation, not one per keystroke-save.
RESOLUTION = timedelta(seconds=30)


def touch_activity(workspace: Workspace) -> None:
    now = timezone.now()
    moved = Workspace.objects.filter(pk=workspace.pk, last_activity_at__lt=now - RESOLUTION).update(last_activity_at=now)
    if moved:
        workspace.last_activity_at = now
        cache.workspace_changed(workspace)
