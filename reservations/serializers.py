# Plain Serializers, not ModelSerializers: these answer the hot reserve and purchase
# requests, and a ModelSerializer rebuilds its fields from the model on every use
# (~0.8 ms a request, measured with cProfile).
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from drops.models import Size

LABEL_MAX_LENGTH = Size._meta.get_field("label").max_length
BIGINT_MAX = 2**63 - 1
SIZE_INVALID = (
    f"Must be a size's id (a positive integer) or its label (1 to {LABEL_MAX_LENGTH} characters)."
)


class SizeRefSerializer(serializers.Serializer):
    """Which size: what a reservation or a purchase is of."""

    id = serializers.IntegerField(read_only=True)
    label = serializers.CharField(read_only=True)


class ReservationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)
    dropId = serializers.IntegerField(source="drop_id", read_only=True)
    size = SizeRefSerializer(read_only=True)


_timestamp = serializers.DateTimeField()


def reservation_data(reservation) -> dict:
    """What ReservationSerializer gives, built directly: the reserve response is the
    hot path, and a Serializer deep-copies its fields on every instantiation (~0.2 ms
    a request, docs/benchmarks.md). A test pins the two to the same output.

    ``reservation.size`` is already set by services.reserve: no query here."""
    return {
        "id": reservation.id,
        "status": reservation.status,
        "expires_at": _timestamp.to_representation(reservation.expires_at),
        "dropId": reservation.drop_id,
        "size": {"id": reservation.size_id, "label": reservation.size.label},
    }


def requested_size(data: dict) -> int | str | None:
    """The size a reserve body names (``{"size": 5}`` or ``{"size": "US 9"}``), or
    None when it names none. Raises ValidationError (400) for anything else.

    Ids are bounded to bigint and labels to their column, with no NUL and no lone
    surrogate: PostgreSQL refuses those, and that would be a 500.
    """
    size = data.get("size")
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        if 1 <= size <= BIGINT_MAX:
            return size
    elif isinstance(size, str) and 0 < len(size) <= LABEL_MAX_LENGTH and "\x00" not in size:
        try:
            size.encode()
        except UnicodeEncodeError:
            pass
        else:
            return size
    raise serializers.ValidationError({"size": [SIZE_INVALID]})


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX},
            {
                "type": "string",
                "minLength": 1,
                "maxLength": LABEL_MAX_LENGTH,
                "pattern": r"^[^\x00]+$",
            },
        ]
    }
)
class SizeChoiceField(serializers.Field):
    """A size by id or by label, as requested_size takes it."""

    default_error_messages = {"invalid": SIZE_INVALID}

    def to_internal_value(self, data):
        try:
            return requested_size({"size": data})
        except serializers.ValidationError:
            self.fail("invalid")


# For the schema: the view reads the body with requested_size, the same rules.
class ReserveSerializer(serializers.Serializer):
    """What to reserve; an empty body (or none) reserves a drop's only size."""

    size = SizeChoiceField(
        required=False,
        allow_null=True,
        help_text=(
            "The size to hold: its `id` or its `label` (as the drop's `sizes` list them). "
            "Absent or null: only for a drop of one size (400 `size_required` otherwise). "
            "A size the drop does not have: 400 `size_not_found`."
        ),
    )


class PurchaseSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    userId = serializers.IntegerField(source="user_id", read_only=True)
    dropId = serializers.IntegerField(source="drop_id", read_only=True)
    reservationId = serializers.IntegerField(source="reservation_id", read_only=True)
    size = SizeRefSerializer(source="reservation.size", read_only=True)
    pricePaid = serializers.DecimalField(
        source="price_paid", max_digits=10, decimal_places=2, read_only=True
    )
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class MyReservationSerializer(ReservationSerializer):
    dropName = serializers.CharField(source="drop.name", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class MyPurchaseSerializer(PurchaseSerializer):
    dropName = serializers.CharField(source="drop.name", read_only=True)
