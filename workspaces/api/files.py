"""/api/v1/workspaces/{id}/files/... and /patch/: thin views over workspaces.files."""

from django.conf import settings
from django.http import HttpResponse
from django.utils.http import content_disposition_header
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import parsers, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import JSONParser, content_length, error, refuse_oversized_body
from workspaces import files
from workspaces.models import Workspace
from workspaces.patches import PatchConflict, PatchError
from workspaces.services import can_manage


class OctetStreamParser(parsers.BaseParser):
    """Raw bytes for uploads (`Content-Type: application/octet-stream`)."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        refuse_oversized_body(parser_context)
        return stream.read() if stream is not None else b""


class PlainTextParser(parsers.BaseParser):
    """A diff pasted as the request body (text/plain, text/x-diff, text/x-patch)."""

    media_type = "text/*"

    def parse(self, stream, media_type=None, parser_context=None):
        refuse_oversized_body(parser_context)
        data = stream.read() if stream is not None else b""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise parsers.ParseError("The body is not UTF-8 text.") from None


# For the OpenAPI schema only: the views validate their input themselves (path safety first).
_PATH = OpenApiParameter("path", str, description="Relative to the workspace folder; '..', absolute paths, NUL, "
                         "backslashes and encoded separators are refused (400).")
_ENTRY = inline_serializer("FileEntry", {
    "path": serializers.CharField(), "name": serializers.CharField(),
    "type": serializers.ChoiceField(["file", "dir", "symlink", "other"]),
    "size": serializers.IntegerField(allow_null=True), "modified": serializers.DateTimeField(),
})
_TREE = inline_serializer("FileTree", {
    "path": serializers.CharField(), "depth": serializers.IntegerField(), "truncated": serializers.BooleanField(),
    "entries": _ENTRY.__class__(many=True),
})
_CONTENT = inline_serializer("FileContent", {
    "path": serializers.CharField(), "content": serializers.CharField(), "sha256": serializers.CharField(),
    "size": serializers.IntegerField(), "modified": serializers.DateTimeField(),
})
_WRITTEN = inline_serializer("FileWritten", {
    "path": serializers.CharField(), "sha256": serializers.CharField(), "size": serializers.IntegerField(),
})
_MOVE = inline_serializer("FileMove", {"from": serializers.CharField(), "to": serializers.CharField()})
_MOVED = inline_serializer("FileMoved", {"from": serializers.CharField(), "to": serializers.CharField(),
                                         "type": serializers.CharField()})
_FOLDER = inline_serializer("Folder", {"path": serializers.CharField()})
_PATCH = inline_serializer("PatchRequest", {"diff": serializers.CharField()})
_PATCHED = inline_serializer("PatchResult", {
    "applied": serializers.BooleanField(), "preview": serializers.BooleanField(),
    "files": serializers.ListField(child=serializers.DictField()),
})


def _etag(sha256: str) -> str:
    return f'"{sha256}"'


def _precondition(request) -> str | None:
    """What the file must be before a write: the sha256 an If-Match header names (quotes and a weak
    W/ prefix tolerated), "absent" for `If-None-Match: *` (create, never overwrite), else None."""
    if request.headers.get("If-None-Match", "").strip() == "*":
        return "absent"
    value = request.headers.get("If-Match", "").strip()
    if not value:
        return None
    return value.removeprefix("W/").strip('"').lower()


class WorkspaceFilesView(APIView):
    """Shared by every files endpoint: the workspace comes through `visible_to` (another
    organization's is a 404), writers must be allowed to edit it (auditors read only), and
    FileError, PatchError and PatchConflict become JSON errors with their status."""

    parser_classes = [JSONParser, OctetStreamParser, PlainTextParser]

    def workspace(self, *, write: bool = False) -> Workspace:
        queryset = Workspace.objects.visible_to(self.request.user).live().select_related(
            "organization", "placement__server"
        )
        workspace = get_object_or_404(queryset, pk=self.kwargs["workspace_id"])
        if write and not can_manage(self.request.user, workspace):
            raise PermissionDenied("You may read this workspace's files but not change them.")
        return workspace

    def handle_exception(self, exc):
        if isinstance(exc, files.FileError):
            return error(exc.message, exc.status, error=exc.code, **exc.extra)
        if isinstance(exc, PatchError):
            return error(str(exc), status.HTTP_400_BAD_REQUEST, error="malformed_diff")
        if isinstance(exc, PatchConflict):
            return error(str(exc), status.HTTP_409_CONFLICT, error="conflict", path=exc.path, hunk=exc.hunk,
                         header=exc.header)
        return super().handle_exception(exc)

    def body_field(self, name: str) -> str:
        data = self.request.data
        value = data.get(name) if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise files.FileError("invalid", f"The JSON body needs a string field '{name}'.")
        return value


class FileTreeView(WorkspaceFilesView):
    """GET ?path=DIR&depth=N: entries below DIR (depth 0 or "all": the whole tree) in one round trip.
    ?refresh=1 reads the folder again instead of the cached listing."""

    @extend_schema(parameters=[
        _PATH, OpenApiParameter("depth", str, description="1 (default) to 200 levels, or 'all'/0 for the whole tree."),
        OpenApiParameter("refresh", str, enum=["1"], description="Read the folder again instead of the cache."),
    ], responses=_TREE)
    def get(self, request, workspace_id):
        workspace = self.workspace()
        raw_depth = request.query_params.get("depth", "1")
        try:
            depth = 0 if raw_depth == "all" else int(raw_depth)
        except ValueError:
            depth = -1
        if not 0 <= depth <= files.MAX_TREE_DEPTH:
            raise files.FileError("invalid", f"depth must be 'all' or a number from 0 to {files.MAX_TREE_DEPTH}.")
        listing, cached = files.list_tree(workspace, request.query_params.get("path", ""), depth=depth,
                                          actor=request.user, refresh=request.query_params.get("refresh") == "1")
        response = Response({**listing, "depth": depth})
        response["X-Berth-Cache"] = "hit" if cached else "miss"
        return response


class FileContentView(WorkspaceFilesView):
    """GET text (ETag: its sha256) or ?download=1; PUT JSON {"content"} or raw bytes; DELETE."""

    @extend_schema(parameters=[_PATH, OpenApiParameter("download", str, enum=["1"],
                                                      description="The bytes as an attachment, binary or not.")],
                   responses={200: _CONTENT, (200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, workspace_id):
        workspace = self.workspace()
        download = request.query_params.get("download") == "1"
        content = files.read_file(
            workspace, request.query_params.get("path"), actor=request.user, allow_binary=download,
            max_bytes=settings.BERTH_UPLOAD_MAX_BYTES if download else settings.BERTH_EDITOR_MAX_BYTES,
        )
        if download:
            # Always an attachment of a type browsers never render (and nosniff, SecurityMiddleware):
            # the bytes are user content on Berth's origin. A non-ASCII name goes in RFC 5987 form;
            # raw, Django would MIME-encode the whole header and lose "attachment".
            response = HttpResponse(content.data, content_type="application/octet-stream")
            response["Content-Disposition"] = content_disposition_header(True, content.path.rsplit("/", 1)[-1])
        else:
            response = Response({"path": content.path, "content": content.data.decode("utf-8"),
                                 "sha256": content.sha256, "size": content.size, "modified": content.modified})
        response["ETag"] = _etag(content.sha256)
        return response

    @extend_schema(parameters=[_PATH], request={
        "application/json": inline_serializer("FileWrite", {"content": serializers.CharField()}),
        "application/octet-stream": OpenApiTypes.BINARY,
    }, responses=_WRITTEN)
    def put(self, request, workspace_id):
        workspace = self.workspace(write=True)
        if content_length(request) > settings.BERTH_UPLOAD_MAX_BYTES + 1024:  # JSON quoting may add a little
            raise files.FileError("too_large", f"The upload is over the {settings.BERTH_UPLOAD_MAX_BYTES} byte limit.")
        data = request.data if isinstance(request.data, bytes) else self.body_field("content").encode("utf-8")
        if len(data) > settings.BERTH_UPLOAD_MAX_BYTES:
            raise files.FileError("too_large", f"The file is over the {settings.BERTH_UPLOAD_MAX_BYTES} byte limit.")
        written = files.write_file(workspace, request.query_params.get("path"), data, actor=request.user,
                                   expected_sha256=_precondition(request))
        response = Response({"path": written["path"], "sha256": written["sha256"], "size": written["size"]})
        response["ETag"] = _etag(written["sha256"])
        return response

    @extend_schema(parameters=[_PATH], responses={204: None})
    def delete(self, request, workspace_id):
        workspace = self.workspace(write=True)
        files.delete_path(workspace, request.query_params.get("path"), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FileMoveView(WorkspaceFilesView):
    """POST {"from", "to"}: rename or move a file or folder; parents of "to" are created, an existing "to" is 409."""

    @extend_schema(request=_MOVE, responses=_MOVED)
    def post(self, request, workspace_id):
        workspace = self.workspace(write=True)
        moved = files.move_path(workspace, self.body_field("from"), self.body_field("to"), actor=request.user)
        return Response({"from": moved["from"], "to": moved["to"], "type": moved["type"]})


class FileMkdirView(WorkspaceFilesView):
    """POST {"path"}: create a folder and its parents; an existing name is 409."""

    @extend_schema(request=_FOLDER, responses={201: _FOLDER})
    def post(self, request, workspace_id):
        workspace = self.workspace(write=True)
        made = files.make_folder(workspace, self.body_field("path"), actor=request.user)
        return Response({"path": made["path"], "type": "dir"}, status=status.HTTP_201_CREATED)


class PatchView(WorkspaceFilesView):
    """POST a unified diff (text body or {"diff"}); ?preview=1 lists files and hunks, writing nothing."""

    @extend_schema(parameters=[OpenApiParameter("preview", str, enum=["1"], description="List files and hunks only.")],
                   request={"application/json": _PATCH, "text/x-diff": OpenApiTypes.STR}, responses=_PATCHED)
    def post(self, request, workspace_id):
        preview = request.query_params.get("preview") == "1"
        workspace = self.workspace(write=not preview)
        diff = request.data if isinstance(request.data, str) else self.body_field("diff")
        changed = files.apply_patch(workspace, diff, actor=request.user, preview=preview)
        return Response({"applied": not preview, "preview": preview, "files": changed})
