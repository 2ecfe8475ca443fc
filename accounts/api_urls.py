"""The accounts API: /api/users (sign-up; the list for staff) and /api/auth/token."""

from django.urls import path

from accounts.api import TokenView, UserViewSet
from inventory_project.api_routes import ApiRouter

router = ApiRouter()
router.register("users", UserViewSet, basename="user")

urlpatterns = [
    *router.urls,
    # A plain APIView (DRF's ObtainAuthToken), which a router does not take.
    path("auth/token", TokenView.as_view(), name="token"),
]
