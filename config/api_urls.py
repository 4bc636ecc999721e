"""/api/v1/: each app contributes its routes from api/urls.py."""

from django.urls import include, path

urlpatterns = [
    path("", include("tenants.api.urls")),
    path("", include("workspaces.api.urls")),
    path("", include("infrastructure.api.urls")),
    path("", include("audit.api.urls")),
]
