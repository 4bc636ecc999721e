"""/api/v1/servers/ and /api/v1/placement-policies/: operators (superusers) only. Views validate and
call services; every change is audited there."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from config.api import Conflict

from .. import services
from ..choices import DockerEndpoint
from ..models import PlacementPolicy, Server, ServerConflict
from .filtersets import ServerFilterSet
from .serializers import (
    ConnectionTestSerializer,
    PlacementPolicySerializer,
    ServerSerializer,
    TrustHostKeySerializer,
)


class IsOperator(BasePermission):
    message = "Servers and placement are managed by operators (superusers) only."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_superuser)


class OperatorViewSet(viewsets.GenericViewSet):
    permission_classes = [IsAuthenticated, IsOperator]

    def handle_exception(self, exc):
        if isinstance(exc, ServerConflict):
            exc = Conflict(str(exc))
        return super().handle_exception(exc)


class ServerViewSet(OperatorViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.UpdateModelMixin):
    """Container servers. Register (201, status `unverified`), test, trust the host key it offered, and
    it becomes `active`. Secrets are write-only; there is no DELETE: retire a server instead."""

    queryset = Server.objects.prefetch_related("credentials")
    http_method_names = ["get", "post", "patch", "head", "options"]
    serializer_class = ServerSerializer
    filterset_class = ServerFilterSet

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        credential, bundle = data.pop("credential", None), data.pop("docker_tls", None)
        if data.get("docker_endpoint") == DockerEndpoint.LOCAL:
            server, public_line = services.register_local_server(
                name=data["name"], storage_root=data["storage_root"], actor=request.user), ""
        else:
            generate = credential["kind"] == "generate"
            server, public_line = services.register_server(
                actor=request.user, fields=data, docker_tls=bundle, generate_key=generate,
                ssh_key=None if generate else {"private_key": credential["private_key"],
                                               "passphrase": credential.get("passphrase", "")},
            )
        body = self.get_serializer(self.get_queryset().get(pk=server.pk)).data
        if credential and credential["kind"] == "generate":
            body["generated_public_key"] = public_line
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        server, credential, bundle = serializer.instance, data.pop("credential", None), data.pop("docker_tls", None)
        if data:
            services.update_server(server, actor=self.request.user, changes=data)
        if credential and credential["kind"] == "generate":
            services.generate_key_pair(server, actor=self.request.user)
        elif credential:
            services.set_ssh_key(server, private_key=credential["private_key"],
                                 passphrase=credential.get("passphrase", ""), actor=self.request.user)
        if bundle:
            services.set_tls_bundle(server, actor=self.request.user, **bundle)
        serializer.instance = self.get_queryset().get(pk=server.pk)

    def _detail(self, server: Server, code=status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=server.pk)).data, status=code)

    @extend_schema(request=ConnectionTestSerializer, responses={202: None})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Queue a connection test; its steps appear in `last_test` when it finishes (at most ~2 min)."""
        options = ConnectionTestSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        services.request_connection_test(self.get_object(), actor=request.user, **options.validated_data)
        return Response({"detail": "Connection test queued; see last_test on the server."},
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=TrustHostKeySerializer)
    @action(detail=True, methods=["post"], url_path="trust-host-key")
    def trust_host_key(self, request, pk=None):
        """Pin the host key the server offered. `fingerprint` must be the one you checked out of band."""
        body = TrustHostKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        server = services.trust_host_key(self.get_object(), fingerprint=body.validated_data["fingerprint"],
                                         actor=request.user)
        return self._detail(server)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def drain(self, request, pk=None):
        return self._detail(services.drain_server(self.get_object(), actor=request.user))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        return self._detail(services.retire_server(self.get_object(), actor=request.user))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        return self._detail(services.reactivate_server(self.get_object(), actor=request.user))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="generate-key-pair")
    def generate_key_pair(self, request, pk=None):
        """Replace the SSH key with a new ed25519 pair; add the returned line to authorized_keys."""
        server = self.get_object()
        public_line = services.generate_key_pair(server, actor=request.user)
        return Response({"public_key": public_line, "detail": f"Add this line to ~{server.ssh_user}/.ssh/authorized_keys "
                                                              "on the server, then run a connection test."})

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="api-key")
    def api_key(self, request, pk=None):
        """A new key for a server-side agent. It is shown this once; Berth keeps only its digest."""
        raw = services.issue_agent_api_key(self.get_object(), actor=request.user)
        return Response({"api_key": raw, "detail": "Store this key now: it is not shown again."},
                        status=status.HTTP_201_CREATED)


class PlacementPolicyViewSet(OperatorViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                             mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin):
    """How servers are chosen for new workspaces; one policy may be the default."""

    queryset = PlacementPolicy.objects.order_by("name")
    serializer_class = PlacementPolicySerializer

    def perform_create(self, serializer):
        serializer.instance = services.save_placement_policy(
            PlacementPolicy(), actor=self.request.user, changes=serializer.validated_data)

    def perform_update(self, serializer):
        services.save_placement_policy(serializer.instance, actor=self.request.user, changes=serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_placement_policy(instance, actor=self.request.user)
