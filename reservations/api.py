from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response

from inventory_project.api_errors import refuse_foreign_user_id
from reservations import selectors, services
from reservations.serializers import (
    MyPurchaseSerializer,
    MyReservationSerializer,
    PurchaseSerializer,
    ReservationSerializer,
    reservation_data,
)


class ReservationViewSet(viewsets.GenericViewSet):
    """Reserve, purchase and cancel as the authenticated buyer (token or session)."""

    serializer_class = ReservationSerializer

    @extend_schema(request=None, responses={201: ReservationSerializer})
    def reserve(self, request, drop_id: int):
        refuse_foreign_user_id(request)
        reservation = services.reserve(user=request.user, drop_id=drop_id)
        return Response(
            {
                "message": "Reservation successful",
                "reservation": reservation_data(reservation),
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=None, responses={201: PurchaseSerializer})
    def purchase(self, request, reservation_id: int):
        refuse_foreign_user_id(request)
        sale = services.purchase(user=request.user, reservation_id=reservation_id)
        return Response(
            {
                "message": "Purchase completed successfully",
                "purchase": PurchaseSerializer(sale).data,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=None, responses={200: ReservationSerializer})
    def cancel(self, request, reservation_id: int):
        refuse_foreign_user_id(request)
        reservation = services.cancel(user=request.user, reservation_id=reservation_id)
        return Response(
            {
                "message": "Reservation cancelled",
                "reservation": ReservationSerializer(reservation).data,
            }
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
