from rest_framework.routers import SimpleRouter

from .views import PlacementPolicyViewSet, ServerViewSet

router = SimpleRouter()
router.register("servers", ServerViewSet, basename="server")
router.register("placement-policies", PlacementPolicyViewSet, basename="placement-policy")

urlpatterns = router.urls
