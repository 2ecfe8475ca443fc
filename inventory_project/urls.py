from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, register_converter

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.api import TokenView, UserViewSet
from drops.api import DropViewSet
from inventory_project.health import LivenessView, ReadinessView
from inventory_project.metrics import MetricsView
from reservations.api import ReservationViewSet


class IdConverter:
    """A database id: positive and within bigint, so no lookup can overflow."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

api_patterns = [
    path("health", ReadinessView.as_view(), name="health"),
    path("health/live", LivenessView.as_view(), name="health-live"),
    path("users", UserViewSet.as_view({"get": "list", "post": "create"}), name="users"),
    path("auth/token", TokenView.as_view(), name="token"),
    path("drops", DropViewSet.as_view({"get": "list", "post": "create"}), name="drops"),
    path("drops/<id:pk>", DropViewSet.as_view({"get": "retrieve"}), name="drop"),
    path("reserve/<id:drop_id>", ReservationViewSet.as_view({"post": "reserve"}), name="reserve"),
    path(
        "purchase/<id:reservation_id>",
        ReservationViewSet.as_view({"post": "purchase"}),
        name="purchase",
    ),
    path("reservations", ReservationViewSet.as_view({"get": "list"}), name="reservations"),
    path(
        "reservations/<id:reservation_id>/cancel",
        ReservationViewSet.as_view({"post": "cancel"}),
        name="cancel",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    # Prometheus' default path; staff only (see docs/operations.md).
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("api/", include((api_patterns, "api"))),
    path("accounts/", include("accounts.urls")),
    path("", include("drops.urls")),
    # Nothing unless DEBUG is on: then uploaded photos are served here (production: the proxy).
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),
]

handler400 = "inventory_project.api_errors.bad_request"
handler404 = "inventory_project.api_errors.not_found"
handler500 = "inventory_project.api_errors.server_error"
