"""Thin views over `workspaces.services`: tenant scoping from VisibleToUserMixin (another
organization's workspace is a 404), PermissionDenied is a 403 (a member of the organization who may
see but not change the workspace, e.g. an auditor), WorkspaceConflict a 409."""

from django.db.models import Prefetch
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.api import Conflict, VisibleToUserMixin
from infrastructure.models import Placement

from .. import services
from ..models import Workspace, WorkspaceImage
from .filtersets import WorkspaceFilterSet
from .serializers import WorkspaceCreateSerializer, WorkspaceImageSerializer, WorkspaceSerializer


class WorkspaceViewSet(
    VisibleToUserMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Workspaces: create answers 202 in `pending`; lifecycle actions answer 202 with the workspace
    in its new in-flight state. Deleted workspaces are no longer listed or found."""

    queryset = (
        Workspace.objects.live()
        .select_related("organization", "owner", "image")
        .prefetch_related(Prefetch("placement", queryset=Placement.objects.select_related("server")))
    )
    serializer_class = WorkspaceSerializer
    filterset_class = WorkspaceFilterSet

    def get_serializer_class(self):
        return WorkspaceCreateSerializer if self.action == "create" else WorkspaceSerializer

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace = services.create_workspace(owner=request.user, actor=request.user, **serializer.validated_data)
        return self._accepted(workspace)

    def destroy(self, request, *args, **kwargs):
        return self._act(services.delete_workspace)

    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._act(services.start_workspace)

    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        return self._act(services.stop_workspace)

    @action(detail=True, methods=["post"])
    def restart(self, request, pk=None):
        return self._act(services.restart_workspace)

    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._act(services.retry_workspace)

    def _act(self, service) -> Response:
        workspace = self.get_object()
        try:
            service(workspace, actor=self.request.user)
        except services.WorkspaceConflict as exc:
            raise Conflict(str(exc)) from exc
        return self._accepted(workspace)

    def _accepted(self, workspace: Workspace) -> Response:
        """The workspace as the service left it (its status was set in place by the transition)."""
        body = WorkspaceSerializer(workspace, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class WorkspaceImageViewSet(viewsets.ReadOnlyModelViewSet):
    """The images users may choose for new workspaces (operators curate them in the admin)."""

    queryset = WorkspaceImage.objects.filter(is_active=True)
    serializer_class = WorkspaceImageSerializer
