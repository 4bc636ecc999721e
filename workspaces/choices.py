from django.db import models


class WorkspaceStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PLACING = "placing", "Placing"
    PROVISIONING = "provisioning", "Provisioning"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    STARTING = "starting", "Starting"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    FAILED = "failed", "Failed"


# States where a worker is doing something; the hang detector watches these.
IN_FLIGHT = frozenset(
    {
        WorkspaceStatus.PLACING,
        WorkspaceStatus.PROVISIONING,
        WorkspaceStatus.STARTING,
        WorkspaceStatus.STOPPING,
        WorkspaceStatus.DELETING,
    }
)
