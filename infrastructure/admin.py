"""Operator console for container servers. Every change goes through infrastructure.services (audited);
key material is accepted in write-only fields and never rendered back: pages show "set" and a fingerprint."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.admin_site import ReadOnlyAdminMixin
from workspaces.choices import WorkspaceStatus

from . import credentials, services
from .choices import CredentialKind, DockerEndpoint, ServerStatus
from .models import OrphanContainer, Placement, PlacementPolicy, ResourceUsage, Server, ServerConflict, ServerCredential

# Usage samples are taken every minute (the "sample-usage" beat entry); older ones no longer describe the server.
USAGE_WINDOW = timedelta(minutes=5)

_STATUS_COLOURS = {
    ServerStatus.ACTIVE: "#2e7d32", ServerStatus.DRAINING: "#ef6c00", ServerStatus.OFFLINE: "#c62828",
    ServerStatus.HOST_KEY_MISMATCH: "#b71c1c", ServerStatus.UNVERIFIED: "#546e7a", ServerStatus.RETIRED: "#9e9e9e",
}


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value, not even the one just submitted when the form comes
    back with an error: key material must not travel back to the browser."""

    def format_value(self, value):
        return None


def _secret_input(label: str, help_text: str = "", password: bool = False) -> forms.CharField:
    widget = forms.PasswordInput(render_value=False) if password else WriteOnlyTextarea(attrs={"rows": 4, "cols": 70})
    return forms.CharField(label=label, required=False, strip=False, widget=widget, help_text=help_text)


class ServerForm(forms.ModelForm):
    """Registration and change form. The secret fields start empty on every render: leaving them empty
    keeps the stored credential, filling them replaces it."""

    expected_host_key_fingerprint = forms.CharField(
        required=False, max_length=4000, label="Expected host key",
        help_text="Optional: SHA256:... as ssh-keygen -lf prints it, or a known_hosts line. When it matches, the "
                  "first connection test pins the key without a separate trust step.")
    private_key = _secret_input("SSH private key", "OpenSSH or PEM; ed25519, ECDSA or RSA ≥ 3072 bits. "
                                                   "Never shown again once saved.")
    passphrase = _secret_input("Key passphrase", password=True)
    generate_key = forms.BooleanField(required=False, label="Generate an ed25519 key pair instead",
                                      help_text="The public line to add to authorized_keys is shown after saving.")
    ca_cert = _secret_input("Docker CA certificate (tls)", "PEM CA that signed the daemon's certificate.")
    client_cert = _secret_input("Docker client certificate (tls)")
    client_key = _secret_input("Docker client key (tls)")

    class Meta:
        model = Server
        fields = ["name", "host", "ssh_port", "ssh_user", "docker_endpoint", "docker_url", "storage_root", "region",
                  "labels", "max_workspaces", "cpu_cores", "memory_mb", "expected_host_key_fingerprint"]

    def clean_expected_host_key_fingerprint(self):
        try:
            return credentials.normalize_expected_fingerprint(self.cleaned_data["expected_host_key_fingerprint"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["expected_host_key_fingerprint"]) from None

    def clean(self):
        data = super().clean()
        adding = self.instance.pk is None
        endpoint = data.get("docker_endpoint", self.instance.docker_endpoint)
        key, generate = data.get("private_key"), data.get("generate_key")
        bundle = {name: data.get(name) for name in ("ca_cert", "client_cert", "client_key")}
        if key and generate:
            self.add_error("generate_key", "Either paste a key or generate one, not both.")
        elif key:
            self._collect(credentials.validate_ssh_key, key, data.get("passphrase", ""))
        elif adding and not generate and endpoint != DockerEndpoint.LOCAL:
            self.add_error("private_key", "An SSH private key is required (or generate a key pair).")
        if any(bundle.values()) or (adding and endpoint == DockerEndpoint.TLS):
            if endpoint != DockerEndpoint.TLS:
                self.add_error("ca_cert", "An mTLS bundle is used only with the tls endpoint.")
            else:
                self._collect(credentials.validate_tls_bundle, **bundle)
        return data

    def _collect(self, validate, *args, **kwargs) -> None:
        try:
            validate(*args, **kwargs)
        except ValidationError as exc:
            self.add_error(None, exc)


class ServerCredentialInline(admin.TabularInline):
    """Set or replace credentials with the form's write-only fields; this table only shows them."""

    model = ServerCredential
    fields = ["kind", "secret_state", "fingerprint", "public_key", "expires_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Secret")
    def secret_state(self, obj) -> str:
        return secret_state(obj)


def secret_state(credential: ServerCredential) -> str:
    if credential.kind == CredentialKind.API_KEY:
        return "set (digest only)" if credential.api_key_digest else "not set"
    field = "private_key" if credential.kind == CredentialKind.SSH_KEY else "client_key"
    return "set" if credential.secret_is_set(field) else "not set"


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    form = ServerForm
    list_display = ["name", "status_badge", "region", "docker_endpoint", "workspaces", "load", "measured",
                    "host_key_fingerprint", "last_test_summary", "last_checked_at"]
    list_filter = ["status", "region", "docker_endpoint"]
    search_fields = ["name", "host", "region", "host_key_fingerprint"]
    inlines = [ServerCredentialInline]
    actions = ["test_connection", "test_connection_creating_storage", "trust_offered_host_key", "drain", "retire",
               "reactivate"]
    readonly_fields = ["status", "status_message", "host_key_fingerprint", "offered_host_key_fingerprint",
                       "last_test_steps", "last_test_at", "last_checked_at", "consecutive_failures", "discovered",
                       "reserved_workspaces", "reserved_cpu", "reserved_memory_mb"]

    def get_readonly_fields(self, request, obj=None):
        fixed = [] if obj is None else [name for name in ServerForm.Meta.fields if name not in services.UPDATABLE_FIELDS]
        return [*fixed, *self.readonly_fields]

    def get_fieldsets(self, request, obj=None):
        identity = ["status", "status_message", "host_key_fingerprint", "offered_host_key_fingerprint",
                    "last_test_at", "last_test_steps", "last_checked_at", "consecutive_failures", "discovered"]
        return [
            (None, {"fields": ["name", "host", "ssh_port", "ssh_user", "docker_endpoint", "docker_url", "storage_root",
                               "region", "labels", "expected_host_key_fingerprint"]}),
            ("Capacity", {"fields": ["max_workspaces", "cpu_cores", "memory_mb", "reserved_workspaces", "reserved_cpu",
                                     "reserved_memory_mb"]}),
            ("Credentials (write-only: leave empty to keep what is stored)", {
                "fields": ["private_key", "passphrase", "generate_key", "ca_cert", "client_cert", "client_key"]}),
            *([("Identity and last test", {"fields": identity})] if obj is not None else []),
        ]

    def get_queryset(self, request):
        """Load figures as annotations, so the changelist costs the same queries for 1 or 100 servers:
        running workspaces, and the latest usage sample of each running workspace (within
        USAGE_WINDOW) summed per server."""
        running = WorkspaceStatus.RUNNING
        recent = ResourceUsage.objects.filter(sampled_at__gte=timezone.now() - USAGE_WINDOW)
        # Correlated rather than DISTINCT ON: the embedded default (`make run`) is SQLite.
        latest_of_its_workspace = Subquery(
            recent.filter(workspace=OuterRef("workspace_id")).order_by("-sampled_at", "-pk").values("pk")[:1]
        )

        def per_server(queryset, total):
            return Subquery(queryset.filter(server=OuterRef("pk")).order_by().values("server")
                            .annotate(total=total).values("total"))

        samples = recent.filter(workspace__status=running, pk=latest_of_its_workspace)
        return super().get_queryset(request).annotate(
            free_slots=F("max_workspaces") - F("reserved_workspaces"),
            running_workspaces=Coalesce(
                per_server(Placement.objects.filter(workspace__status=running), Count("pk")), 0,
                output_field=IntegerField()),
            used_cpu_percent=per_server(samples, Sum("cpu_percent")),
            used_memory_bytes=per_server(samples, Sum("memory_bytes")),
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return format_html('<strong style="color:{}">{}</strong>', _STATUS_COLOURS.get(obj.status, "#000"),
                           obj.get_status_display())

    @admin.display(description="Workspaces (running / placed / max)", ordering="running_workspaces")
    def workspaces(self, obj):
        return format_html("{} / {} / {}", obj.running_workspaces, obj.reserved_workspaces, obj.max_workspaces)

    @admin.display(description="Reserved (used / total)", ordering="free_slots")
    def load(self, obj):
        return format_html("{} / {} CPU · {} / {} MB", obj.reserved_cpu, obj.cpu_cores, obj.reserved_memory_mb,
                           obj.memory_mb)

    @admin.display(description="Measured (latest samples)", ordering="used_cpu_percent")
    def measured(self, obj):
        """CPU percent is of one core (docker stats), so a server's ceiling is cores × 100 %."""
        if obj.used_cpu_percent is None:
            return "no recent samples"
        return format_html("{} % of {} % CPU · {} MB of {} MB", f"{obj.used_cpu_percent:.0f}",
                           f"{obj.cpu_cores * 100:.0f}", obj.used_memory_bytes // 2**20, obj.memory_mb)

    @admin.display(description="Last test", ordering="last_test_at")
    def last_test_summary(self, obj):
        if not obj.last_test:
            return "never"
        failed = [step for step in obj.last_test if not step.get("ok")]
        if not failed:
            return format_html('<span style="color:#2e7d32">passed</span> {}', obj.last_test_at.strftime("%Y-%m-%d %H:%M"))
        return format_html('<span style="color:#c62828">{}: {}</span>', failed[0]["name"], failed[0]["result"])

    @admin.display(description="Last test steps")
    def last_test_steps(self, obj):
        if not obj.last_test:
            return "No test yet: use the “Test connection” action."
        rows = format_html_join("", '<tr><td>{}</td><td style="color:{}">{}</td><td>{}</td></tr>', (
            (step["name"], "#2e7d32" if step.get("ok") else "#c62828", step["result"], step["message"])
            for step in obj.last_test
        ))
        return format_html("<table><tr><th>Step</th><th>Result</th><th>Message</th></tr>{}</table>", rows)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        key = {"private_key": data["private_key"], "passphrase": data.get("passphrase", "")} if data.get("private_key") else None
        bundle = {name: data[name] for name in ("ca_cert", "client_cert", "client_key")} if data.get("ca_cert") else None
        if not change:
            fields = {name: data[name] for name in ServerForm.Meta.fields if name in data}
            if obj.docker_endpoint == DockerEndpoint.LOCAL:
                server, public_line = services.register_local_server(
                    name=obj.name, storage_root=obj.storage_root, actor=request.user), ""
            else:
                server, public_line = services.register_server(actor=request.user, fields=fields, ssh_key=key,
                                                               docker_tls=bundle, generate_key=data.get("generate_key"))
            obj.pk, obj._state.adding = server.pk, False
        else:
            changes = {name: data[name] for name in form.changed_data if name in services.UPDATABLE_FIELDS}
            if changes:
                services.update_server(obj, actor=request.user, changes=changes)
            public_line = ""
            if data.get("generate_key"):
                public_line = services.generate_key_pair(obj, actor=request.user)
            elif key:
                services.set_ssh_key(obj, actor=request.user, **key)
            if bundle:
                services.set_tls_bundle(obj, actor=request.user, **bundle)
        if public_line and data.get("generate_key"):
            messages.info(request, f"Add this line to ~{obj.ssh_user}/.ssh/authorized_keys on {obj.host}: {public_line}")

    def _each(self, request, queryset, verb: str, call) -> None:
        for server in queryset:
            try:
                call(server)
            except (ServerConflict, ValidationError) as exc:
                messages.error(request, f"{server}: {exc.messages[0] if isinstance(exc, ValidationError) else exc}")
            else:
                messages.success(request, f"{server}: {verb}.")

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        self._each(request, queryset, "connection test queued; reload to see its steps",
                   lambda server: services.request_connection_test(server, actor=request.user))

    @admin.action(description="Test connection (create the storage folder if missing)")
    def test_connection_creating_storage(self, request, queryset):
        self._each(request, queryset, "connection test queued",
                   lambda server: services.request_connection_test(server, actor=request.user, create_storage=True))

    @admin.action(description="Trust the offered host key…")
    def trust_offered_host_key(self, request, queryset):
        """Two steps: show each offered fingerprint, and pin only after the operator confirms them."""
        if request.POST.get("confirm") == "yes":
            self._each(request, queryset, "host key trusted; a connection test was queued",
                       lambda server: services.trust_host_key(server, fingerprint=request.POST.get(f"fingerprint-{server.pk}", ""),
                                                              actor=request.user))
            return None
        return TemplateResponse(request, "admin/infrastructure/server/trust_host_key.html", {
            **self.admin_site.each_context(request), "title": "Trust host keys", "servers": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "opts": self.model._meta,
        })

    @admin.action(description="Drain (no new workspaces)")
    def drain(self, request, queryset):
        self._each(request, queryset, "draining", lambda server: services.drain_server(server, actor=request.user))

    @admin.action(description="Retire")
    def retire(self, request, queryset):
        self._each(request, queryset, "retired", lambda server: services.retire_server(server, actor=request.user))

    @admin.action(description="Reactivate")
    def reactivate(self, request, queryset):
        self._each(request, queryset, "reactivated (or re-verification queued)",
                   lambda server: services.reactivate_server(server, actor=request.user))

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # retire instead: placements and history point at servers


@admin.register(ServerCredential)
class ServerCredentialAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Shows that a secret is set and how to recognise it. Set or replace it on the server's page."""

    list_display = ["server", "kind", "secret", "fingerprint", "expires_at", "expiry_warning", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["server"]
    search_fields = ["server__name", "fingerprint"]
    fields = ["server", "kind", "secret", "fingerprint", "public_key", "ca_cert", "client_cert", "expires_at", "created_at"]
    readonly_fields = fields

    @admin.display(description="Secret")
    def secret(self, obj) -> str:
        return secret_state(obj)

    @admin.display(description="Expiry", boolean=False)
    def expiry_warning(self, obj):
        return format_html('<strong style="color:#c62828">{}</strong>', "expires in < 30 days") if obj.expires_soon else ""


@admin.register(PlacementPolicy)
class PlacementPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "strategy", "preferred_regions", "label_selector", "is_default"]
    list_filter = ["strategy", "is_default"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        services.save_placement_policy(obj, actor=request.user, changes={name: form.cleaned_data[name] for name in form.changed_data})

    def delete_model(self, request, obj):
        services.delete_placement_policy(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for policy in queryset:
            services.delete_placement_policy(policy, actor=request.user)


@admin.register(Placement)
class PlacementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["workspace", "server", "container_id", "data_path", "reserved_cpu", "reserved_memory_mb", "released",
                    "placed_at"]
    list_filter = ["released", "server"]
    list_select_related = ["workspace", "server"]
    search_fields = ["container_id", "data_path", "server__name"]
    raw_id_fields = ["workspace", "server"]


@admin.register(ResourceUsage)
class ResourceUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Per-server load over time: filter by server to see its workspaces' samples."""

    list_display = ["sampled_at", "server", "workspace", "cpu_percent", "memory_mb", "disk_mb"]
    list_filter = ["server"]
    list_select_related = ["server", "workspace"]
    date_hierarchy = "sampled_at"
    raw_id_fields = ["workspace", "server"]

    @admin.display(description="Memory (MB)", ordering="memory_bytes")
    def memory_mb(self, obj) -> int:
        return obj.memory_bytes // (1024 * 1024)

    @admin.display(description="Disk (MB)", ordering="disk_bytes")
    def disk_mb(self, obj):
        return obj.disk_bytes // (1024 * 1024) if obj.disk_bytes is not None else "—"


@admin.register(OrphanContainer)
class OrphanContainerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["server", "container_name", "container_id", "data_path", "workspace_id", "found_at", "resolved_at", "note"]
    list_filter = ["server", "resolved_at"]
    list_select_related = ["server"]
    search_fields = ["container_name", "container_id", "data_path"]
