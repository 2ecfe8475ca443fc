"""The drops API: /api/drops (list; create for staff) and /api/drops/<id>."""

from drops.api import DropViewSet
from inventory_project.api_routes import ApiRouter

router = ApiRouter()
router.register("drops", DropViewSet, basename="drop")

urlpatterns = router.urls
