from rest_framework import serializers

from reservations.models import Purchase, Reservation


class ReservationSerializer(serializers.ModelSerializer):
    dropId = serializers.IntegerField(source="drop_id", read_only=True)

    class Meta:
        model = Reservation
        fields = ["id", "status", "expires_at", "dropId"]


class PurchaseSerializer(serializers.ModelSerializer):
    userId = serializers.IntegerField(source="user_id", read_only=True)
    dropId = serializers.IntegerField(source="drop_id", read_only=True)
    reservationId = serializers.IntegerField(source="reservation_id", read_only=True)
    pricePaid = serializers.DecimalField(source="price_paid", max_digits=10, decimal_places=2,
                                         read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Purchase
        fields = ["id", "userId", "dropId", "reservationId", "pricePaid", "createdAt"]


class MyReservationSerializer(ReservationSerializer):
    dropName = serializers.CharField(source="drop.name", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta(ReservationSerializer.Meta):
        fields = [*ReservationSerializer.Meta.fields, "dropName", "createdAt"]


class MyPurchaseSerializer(PurchaseSerializer):
    dropName = serializers.CharField(source="drop.name", read_only=True)

    class Meta(PurchaseSerializer.Meta):
        fields = [*PurchaseSerializer.Meta.fields, "dropName"]
