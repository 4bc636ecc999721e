"""/api/v1/: each app contributes its routes from api/urls.py; the root lists the collections.
Any other path under /api/ falls through to `config.api.api_not_found` (config/urls.py)."""

from django.urls import include, path
from rest_framework.routers import APIRootView

from audit.api.urls import router as audit_router
from infrastructure.api.urls import router as infrastructure_router
from tenants.api.urls import router as tenants_router
from workspaces.api.urls import router as workspaces_router

_collections = {
    prefix: f"{basename}-list"
    for router in (tenants_router, workspaces_router, infrastructure_router, audit_router)
    for prefix, _viewset, basename in router.registry
}

urlpatterns = [
    path("", APIRootView.as_view(api_root_dict=_collections), name="api-root"),
    path("", include("tenants.api.urls")),
    path("", include("workspaces.api.urls")),
    path("", include("infrastructure.api.urls")),
    path("", include("audit.api.urls")),
]
