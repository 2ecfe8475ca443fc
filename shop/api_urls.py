"""The drops API: /api/drops (list; create for staff) and /api/drops/<id>."""

from inventory_project.api_routes import ApiRouter
from shop.api import DropViewSet

router = ApiRouter()
router.register("drops", DropViewSet, basename="drop")

urlpatterns = router.urls
