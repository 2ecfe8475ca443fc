from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

# Imported first: it registers the <id:...> converter, which shop/urls.py uses too.
from inventory_project.api_routes import IdConverter  # noqa: F401
from inventory_project.health import LivenessView, ReadinessView
from inventory_project.metrics import MetricsView

# Each app's API routes live with the app; their names share the "api" namespace
# (api:drops, api:reserve, ...), which shop/views.py and the metrics' labels use.
api_patterns = [
    path("health", ReadinessView.as_view(), name="health"),
    path("health/live", LivenessView.as_view(), name="health-live"),
    path("", include("accounts.api_urls")),
    path("", include("shop.api_urls")),
    path("", include("reservations.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    # Prometheus' default path; staff only (see docs/operations.md).
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("api/", include((api_patterns, "api"))),
    path("accounts/", include("accounts.urls")),
    path("", include("shop.urls")),
    # Nothing unless DEBUG is on: then uploaded photos are served here (production: the proxy).
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),
]

handler400 = "inventory_project.api_errors.bad_request"
handler404 = "inventory_project.api_errors.not_found"
handler500 = "inventory_project.api_errors.server_error"
