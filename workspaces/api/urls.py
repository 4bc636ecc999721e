from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import files
from .views import WorkspaceImageViewSet, WorkspaceViewSet

router = SimpleRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("workspace-images", WorkspaceImageViewSet, basename="workspace-image")

# The files API (workspaces/api/files.py): its routes under workspaces/<id>/files/ and /patch/.
_files = "workspaces/(?P<workspace_id>[^/]+)/"
urlpatterns = router.urls + [
    re_path(rf"^{_files}files/$", files.FileTreeView.as_view(), name="workspace-files"),
    re_path(rf"^{_files}files/content/?$", files.FileContentView.as_view(), name="workspace-file-content"),
    re_path(rf"^{_files}files/move/?$", files.FileMoveView.as_view(), name="workspace-file-move"),
    re_path(rf"^{_files}files/mkdir/?$", files.FileMkdirView.as_view(), name="workspace-file-mkdir"),
    re_path(rf"^{_files}patch/?$", files.PatchView.as_view(), name="workspace-patch"),
]
