from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.serializers import CharField

from inventory_project.api_schema import domain_error
from inventory_project.permissions import ActsOnlyForSelf
from inventory_project.throttles import BuyerRateThrottle
from reservations import idempotency, selectors, services
from reservations.serializers import (
    MyPurchaseSerializer,
    MyReservationSerializer,
    PurchaseSerializer,
    ReservationSerializer,
    ReserveSerializer,
    requested_size,
    reservation_data,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    pattern=idempotency.KEY_PATTERN,
    description=(
        "Makes a retry safe: a retry with the same key gets the first answer again (same "
        "status and body, header Idempotent-Replayed: true) and never a second hold, sale "
        "or release. Keys are per buyer and kept 24 h; a key used for a different request "
        "is refused with 422. 1 to 255 printable ASCII characters; a new UUID per action."
    ),
)
KEY_REUSED = domain_error("The Idempotency-Key was used for a different request.")
# What purchase and cancel refuse, besides bad input.
HOLD_REFUSALS = {
    404: domain_error("No such reservation of yours."),
    409: domain_error("The reservation is not active (purchased or cancelled)."),
    410: domain_error("The hold has expired."),
    422: KEY_REUSED,
}


class BuyerViewSet(viewsets.GenericViewSet):
    """Acts as the authenticated buyer (token or session), and only as them."""

    permission_classes = [IsAuthenticated, ActsOnlyForSelf]
    # Per buyer, by action (reserve, purchase, cancel); the list is not throttled.
    throttle_classes = [BuyerRateThrottle]
    serializer_class = ReservationSerializer
    # Reservation ids in paths: positive and within bigint (inventory_project.api_routes).
    lookup_url_kwarg = "reservation_id"
    lookup_value_converter = "id"


class CheckoutViewSet(BuyerViewSet):
    """Reserve a unit of a drop, then buy it."""

    @extend_schema(
        request=ReserveSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: inline_serializer(
                "Reserved", {"message": CharField(), "reservation": ReservationSerializer()}
            ),
            400: domain_error(
                "Invalid input, or a size this drop does not have (`size_not_found`), or no "
                "size named for a drop of several sizes (`size_required`)."
            ),
            404: domain_error("No such drop."),
            409: domain_error(
                "Not open, that size sold out, already holding a unit of this drop, or "
                "purchase limit reached."
            ),
            422: KEY_REUSED,
        },
    )
    @action(detail=False, methods=["post"], url_path="reserve/<id:drop_id>")
    def reserve(self, request, drop_id: int):
        # By hand, not through ReserveSerializer: this is the hot path, and a
        # serializer costs every request (reservations/serializers.py).
        size = requested_size(request.data)

        def answer() -> Response:
            reservation = services.reserve(user=request.user, drop_id=drop_id, size=size)
            return Response(
                {
                    "message": "Reservation successful",
                    "reservation": reservation_data(reservation),
                },
                status=status.HTTP_201_CREATED,
            )

        return idempotency.respond(request, answer)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: inline_serializer(
                "Purchased", {"message": CharField(), "purchase": PurchaseSerializer()}
            ),
            **HOLD_REFUSALS,
        },
    )
    @action(detail=False, methods=["post"], url_path="purchase/<id:reservation_id>")
    def purchase(self, request, reservation_id: int):
        def answer() -> Response:
            sale = services.purchase(user=request.user, reservation_id=reservation_id)
            return Response(
                {
                    "message": "Purchase completed successfully",
                    "purchase": PurchaseSerializer(sale).data,
                },
                status=status.HTTP_201_CREATED,
            )

        return idempotency.respond(request, answer)


class ReservationViewSet(BuyerViewSet):
    """The buyer's reservations and purchases; cancel a hold."""

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            200: inline_serializer(
                "Cancelled", {"message": CharField(), "reservation": ReservationSerializer()}
            ),
            **HOLD_REFUSALS,
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, reservation_id: int):
        def answer() -> Response:
            reservation = services.cancel(user=request.user, reservation_id=reservation_id)
            return Response(
                {
                    "message": "Reservation cancelled",
                    "reservation": ReservationSerializer(reservation).data,
                }
            )

        return idempotency.respond(request, answer)

    @extend_schema(
        responses=inline_serializer(
            "MyReservations",
            {
                "reservations": MyReservationSerializer(many=True),
                "purchases": MyPurchaseSerializer(many=True),
            },
        )
    )
    def list(self, request):
        return Response(
            {
                "reservations": MyReservationSerializer(
                    selectors.user_reservations(request.user), many=True
                ).data,
                "purchases": MyPurchaseSerializer(
                    selectors.user_purchases(request.user), many=True
                ).data,
            }
        )
