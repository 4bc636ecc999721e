"""Pages: the workspace selector (home) and one workspace's files. Thin: services do the work.

The file browser and editor on the workspace page talk to the files API with the session
(workspaces/api/files.py), so the page and a program go through the same checks."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from infrastructure.models import Server
from tenants.choices import Role

from . import cache, services
from .choices import IN_FLIGHT, WorkspaceStatus as S
from .models import Workspace, WorkspaceImage

# name -> (cpu, memory MiB); None keeps the image's defaults. Limits are checked by the service.
SIZES = {
    "default": ("Image default", None, None),
    "small": ("Small: 1 CPU, 1 GiB", "1", 1024),
    "medium": ("Medium: 2 CPU, 4 GiB", "2", 4096),
    "large": ("Large: 4 CPU, 8 GiB", "4", 8192),
}
ACTIONS = {
    "start": services.start_workspace,
    "stop": services.stop_workspace,
    "restart": services.restart_workspace,
    "delete": services.delete_workspace,
    "retry": services.retry_workspace,
}
# Which buttons a status offers; the service still decides.
_OFFERED = {
    S.RUNNING: ("stop", "restart", "delete"),
    S.STOPPED: ("start", "delete"),
    S.FAILED: ("retry", "delete"),
    S.PENDING: ("delete",),
}


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Lowercase letters, digits and hyphens.")
    source = forms.ChoiceField(choices=[("empty", "Empty"), ("clone", "Clone from GitHub")], initial="empty",
                               widget=forms.RadioSelect)
    repo_url = forms.CharField(required=False, label="Repository URL",
                               widget=forms.URLInput(attrs={"placeholder": "https://github.com/owner/repo"}))
    branch = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": "default branch"}))
    image = forms.ModelChoiceField(queryset=WorkspaceImage.objects.filter(is_active=True), empty_label=None)
    size = forms.ChoiceField(choices=[(key, label) for key, (label, _, _) in SIZES.items()], initial="default")

    def clean(self):
        data = super().clean()
        if data.get("source") == "clone" and not data.get("repo_url"):
            self.add_error("repo_url", "Enter the repository to clone.")
        if data.get("source") == "empty":
            data["repo_url"], data["branch"] = "", ""
        return data

    def show_service_errors(self, error: ValidationError) -> None:
        """The service's field errors next to the matching inputs; resources next to the size."""
        for field, problems in error.message_dict.items():
            target = {"cpu": "size", "memory_mb": "size"}.get(field, field)
            self.add_error(target if target in self.fields else None, problems)


def _row(workspace: Workspace, may_manage: bool) -> dict:
    placement = getattr(workspace, "placement", None)
    return {
        "id": str(workspace.pk),
        "name": workspace.name,
        "owner": workspace.owner.get_username(),
        "status": workspace.status,
        "status_label": workspace.get_status_display(),
        "status_message": workspace.status_message,
        "failure_reason": workspace.failure_reason,
        "in_flight": workspace.status in IN_FLIGHT or workspace.status == S.PENDING,
        "server": placement.server.name if placement else "",
        "has_folder": placement is not None,
        "image": workspace.image.name,
        "repo_url": workspace.repo_url,
        "last_activity_at": workspace.last_activity_at,
        "actions": _OFFERED.get(workspace.status, ()) if may_manage else (),
    }


def _rows(request) -> list[dict]:
    organization, membership = request.organization, request.membership

    def build() -> list[dict]:
        workspaces = (
            Workspace.objects.visible_to(request.user).live().filter(organization=organization)
            .select_related("owner", "image", "organization", "placement__server").order_by("name", "pk")
        )
        # can_manage depends only on the role and on ownership: ask once for own and once for others',
        # so the queries do not grow with the number of workspaces.
        decisions: dict[bool, bool] = {}
        rows = []
        for workspace in workspaces:
            own = workspace.owner_id == request.user.pk
            if own not in decisions:
                decisions[own] = services.can_manage(request.user, workspace)
            rows.append(_row(workspace, decisions[own]))
        return rows

    return cache.cached_workspace_list(request.user, organization, membership.role, build)


def _home_context(request, form: WorkspaceForm) -> dict:
    membership = request.membership
    return {
        "rows": _rows(request) if membership else [],
        "form": form,
        "may_create": membership is not None and membership.role != Role.AUDITOR,
        "has_servers": Server.objects.exists(),
        "has_images": WorkspaceImage.objects.filter(is_active=True).exists(),
    }


@login_required
@require_GET
def home(request):
    """The workspace selector: the active organization's workspaces and the create form."""
    return render(request, "workspaces/home.html", _home_context(request, WorkspaceForm()))


@login_required
@require_POST
def create(request):
    form = WorkspaceForm(request.POST)
    if request.organization is None:
        raise Http404("You are not in an organization.")
    if form.is_valid():
        size = SIZES[form.cleaned_data["size"]]
        try:
            workspace = services.create_workspace(
                organization=request.organization, owner=request.user, name=form.cleaned_data["name"],
                repo_url=form.cleaned_data["repo_url"], branch=form.cleaned_data["branch"],
                image=form.cleaned_data["image"], cpu=size[1], memory_mb=size[2], actor=request.user,
            )
        except ValidationError as exc:
            form.show_service_errors(exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            cache.workspace_changed(workspace)
            messages.success(request, f"Workspace {workspace.name} is being created.")
            return redirect("home")
    return render(request, "workspaces/home.html", _home_context(request, form), status=400)


@login_required
@require_GET
def rows(request):
    """The home page's rows as HTML fragments, polled while a workspace is on its way somewhere."""
    found = _rows(request) if request.membership else []
    next_url = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = ""
    return JsonResponse({
        "in_flight": any(row["in_flight"] for row in found),
        "rows": {row["id"]: render_to_string("workspaces/_row.html", {"row": row, "next_url": next_url}, request=request)
                 for row in found},
    })


def _workspace_for(request, pk) -> Workspace:
    """The one lookup pages use: another organization's workspace is a 404."""
    queryset = Workspace.objects.visible_to(request.user).live().select_related("organization", "owner", "image",
                                                                                   "placement__server")
    return get_object_or_404(queryset, pk=pk)


@login_required
@require_POST
def act(request, pk, action):
    """Start, stop, restart, delete or retry; the outcome comes back as a message."""
    service = ACTIONS.get(action)
    if service is None:
        raise Http404("No such action.")
    workspace = _workspace_for(request, pk)
    try:
        service(workspace, actor=request.user)
    except (services.WorkspaceConflict, PermissionDenied) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{action.capitalize()}: {workspace.name} ({workspace.get_status_display().lower()}).")
    target = request.POST.get("next", "")
    if action == "delete" or not url_has_allowed_host_and_scheme(target, {request.get_host()},
                                                                 require_https=request.is_secure()):
        target = reverse("home")
    return redirect(target)


@login_required
@require_GET
def detail(request, pk):
    """One workspace: its status and actions, the file tree, the editor and the patch box."""
    workspace = _workspace_for(request, pk)
    may_edit = services.can_manage(request.user, workspace)
    return render(request, "workspaces/detail.html", {
        "workspace": workspace,
        "row": _row(workspace, may_edit),
        "may_edit": may_edit,
    })
