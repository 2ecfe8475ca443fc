from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import status, viewsets
from rest_framework.response import Response
from rest_framework.serializers import CharField

from inventory_project.api_errors import refuse_foreign_user_id
from inventory_project.api_schema import domain_error
from inventory_project.throttles import BuyerRateThrottle
from reservations import idempotency, selectors, services
from reservations.serializers import (
    MyPurchaseSerializer,
    MyReservationSerializer,
    PurchaseSerializer,
    ReservationSerializer,
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


class ReservationViewSet(viewsets.GenericViewSet):
    """Reserve, purchase and cancel as the authenticated buyer (token or session)."""

    serializer_class = ReservationSerializer
    # Per buyer, by action (reserve, purchase, cancel); the list is not throttled.
    throttle_classes = [BuyerRateThrottle]

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: inline_serializer(
                "Reserved", {"message": CharField(), "reservation": ReservationSerializer()}
            ),
            404: domain_error("No such drop."),
            409: domain_error(
                "Not open, sold out, already holding a unit of this drop, or purchase limit "
                "reached."
            ),
            422: KEY_REUSED,
        },
    )
    def reserve(self, request, drop_id: int):
        refuse_foreign_user_id(request)

        def answer() -> Response:
            reservation = services.reserve(user=request.user, drop_id=drop_id)
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
    def purchase(self, request, reservation_id: int):
        refuse_foreign_user_id(request)

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
    def cancel(self, request, reservation_id: int):
        refuse_foreign_user_id(request)

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
