"""Plain row builders shared by the test modules (fixtures create one object each; these make the
extra rows a test needs, explicitly)."""

from infrastructure.choices import DockerEndpoint, ServerStatus
from infrastructure.models import Placement, Server
from workspaces.choices import WorkspaceStatus
from workspaces.models import Workspace


def make_server(name: str, **fields) -> Server:
    """An active local-engine server row (nothing is contacted) with room for 20 workspaces."""
    defaults = {"host": "127.0.0.1", "docker_endpoint": DockerEndpoint.LOCAL, "storage_root": f"/srv/{name}",
                "status": ServerStatus.ACTIVE, "max_workspaces": 20, "cpu_cores": 8, "memory_mb": 16384}
    return Server.objects.create(name=name, **(defaults | fields))


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
