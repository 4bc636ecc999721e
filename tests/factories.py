"""Plain row builders shared by the test modules (fixtures create one object each; these make the
extra rows a test needs, explicitly)."""

from infrastructure.models import Placement
from workspaces.choices import WorkspaceStatus
from workspaces.models import Workspace


def make_workspace(owner, organization, image, name: str = "demo", status: str = WorkspaceStatus.RUNNING,
                   **fields) -> Workspace:
    """A workspace row in `status` (no lifecycle: the test decides the state)."""
    fields = {"cpu": 1, "memory_mb": 256} | fields
    return Workspace.objects.create(organization=organization, owner=owner, name=name, image=image, status=status,
                                    **fields)


def place(workspace: Workspace, server, data_path: str = "/x", **fields) -> Placement:
    """A placement row for `workspace` on `server`, reserving what the workspace asks for."""
    fields = {"reserved_cpu": workspace.cpu, "reserved_memory_mb": workspace.memory_mb} | fields
    return Placement.objects.create(workspace=workspace, server=server, data_path=data_path, **fields)
