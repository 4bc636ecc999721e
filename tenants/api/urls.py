from rest_framework.routers import SimpleRouter

from .views import ApiTokenViewSet, MembershipViewSet, OrganizationViewSet

router = SimpleRouter()
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("api-tokens", ApiTokenViewSet, basename="api-token")

urlpatterns = router.urls
