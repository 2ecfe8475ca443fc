"""The buyer's API: /api/reserve/<drop>, /api/purchase/<reservation>,
/api/reservations and /api/reservations/<id>/cancel."""

from inventory_project.api_routes import ApiRouter
from reservations.api import CheckoutViewSet, ReservationViewSet

router = ApiRouter()
router.register("reservations", ReservationViewSet, basename="reservation")
# Under no prefix: its actions' paths (reserve/<drop>, purchase/<reservation>) predate
# the routers and start at /api/.
router.register("", CheckoutViewSet, basename="checkout")

urlpatterns = router.urls
