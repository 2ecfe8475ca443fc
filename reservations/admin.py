from django.contrib import admin, messages

from reservations import services
from reservations.exceptions import StockError
from reservations.models import Purchase, Reservation


class ReadOnlyAdmin(admin.ModelAdmin):
    """Reservations and purchases change only through the services module."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["id", "drop", "user", "status", "created_at", "expires_at"]
    list_filter = ["status", "drop"]
    search_fields = ["user__username", "drop__name"]
    list_select_related = ["drop", "user"]
    actions = ["cancel_reservations"]

    @admin.action(description="Cancel selected reservations (returns their units)")
    def cancel_reservations(self, request, queryset):
        cancelled = 0
        for reservation_id in queryset.values_list("pk", flat=True):
            try:
                services.release_reservation(reservation_id=reservation_id)
                cancelled += 1
            except StockError as exc:
                self.message_user(
                    request, f"Reservation {reservation_id}: {exc.message}", messages.WARNING
                )
        self.message_user(request, f"Cancelled {cancelled} reservation(s).", messages.SUCCESS)

    def has_change_permission(self, request, obj=None):
        # The changelist action needs change permission; the form itself stays read-only.
        return obj is None and request.user.is_staff


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ["id", "drop", "user", "price_paid", "created_at", "reservation"]
    list_filter = ["drop"]
    search_fields = ["user__username", "drop__name"]
    list_select_related = ["drop", "user", "reservation"]
