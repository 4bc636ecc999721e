from django.db.models import OuterRef, Subquery
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from config.api import VisibleToUserMixin
from tenants import services
from tenants.choices import MANAGING_ROLES
from tenants.models import ApiToken, Membership, Organization

from .filtersets import MembershipFilterSet
from .serializers import (
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    IssuedApiTokenSerializer,
    MembershipSerializer,
    OrganizationSerializer,
)


class OrganizationViewSet(
    VisibleToUserMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The organizations you belong to. Owners and admins may change the idle timeout and the data
    retention; limits and the placement policy are set by operators in the console."""

    queryset = Organization.objects.all()
    serializer_class = OrganizationSerializer

    def get_queryset(self):
        role = Membership.objects.filter(organization=OuterRef("pk"), user=self.request.user).values("role")[:1]
        return super().get_queryset().annotate(role=Subquery(role))

    def check_object_permissions(self, request, obj):
        """Every member reads; only owners and admins write (checked before the body is validated)."""
        super().check_object_permissions(request, obj)
        if request.method not in SAFE_METHODS and obj.role not in MANAGING_ROLES:
            raise PermissionDenied("Only owners and admins of this organization may change its settings.")

    def perform_update(self, serializer):
        services.update_organization(serializer.instance, actor=self.request.user, changes=serializer.validated_data)


class MembershipViewSet(VisibleToUserMixin, viewsets.ReadOnlyModelViewSet):
    """Who belongs to the organizations you belong to, and with which role."""

    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilterSet


class ApiTokenViewSet(
    VisibleToUserMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your personal API tokens. The key is returned once, at creation; DELETE (or POST revoke)
    revokes a token, which stays listed as revoked."""

    queryset = ApiToken.objects.all()
    serializer_class = ApiTokenSerializer

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: IssuedApiTokenSerializer})
    def create(self, request):
        form = ApiTokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        token, raw = services.issue_api_token(
            request.user, name=form.validated_data["name"], expires_in=form.expires_in()
        )
        token.key = raw
        return Response(IssuedApiTokenSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.revoke_api_token(instance, actor=self.request.user)

    @extend_schema(request=None, responses={200: ApiTokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = services.revoke_api_token(self.get_object(), actor=request.user)
        return Response(ApiTokenSerializer(token).data)
