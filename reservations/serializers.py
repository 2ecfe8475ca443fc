# Plain Serializers, not ModelSerializers: these answer the hot reserve and purchase
# requests, and a ModelSerializer rebuilds its fields from the model on every use
# (~0.8 ms a request, measured with cProfile).
from rest_framework import serializers


class ReservationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)
    dropId = serializers.IntegerField(source="drop_id", read_only=True)


_timestamp = serializers.DateTimeField()


def reservation_data(reservation) -> dict:
    """What ReservationSerializer gives, built directly: the reserve response is the
    hot path, and a Serializer deep-copies its fields on every instantiation (~0.2 ms
    a request, docs/benchmarks.md). A test pins the two to the same output."""
    return {
        "id": reservation.id,
        "status": reservation.status,
        "expires_at": _timestamp.to_representation(reservation.expires_at),
        "dropId": reservation.drop_id,
    }


class PurchaseSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    userId = serializers.IntegerField(source="user_id", read_only=True)
    dropId = serializers.IntegerField(source="drop_id", read_only=True)
    reservationId = serializers.IntegerField(source="reservation_id", read_only=True)
    pricePaid = serializers.DecimalField(
        source="price_paid", max_digits=10, decimal_places=2, read_only=True
    )
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class MyReservationSerializer(ReservationSerializer):
    dropName = serializers.CharField(source="drop.name", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class MyPurchaseSerializer(PurchaseSerializer):
    dropName = serializers.CharField(source="drop.name", read_only=True)
