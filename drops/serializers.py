from decimal import Decimal

from django.utils import timezone

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from drops.models import Drop


class RecentPurchaseSerializer(serializers.Serializer):
    username = serializers.CharField()
    timestamp = serializers.DateTimeField()


class PhotoSerializer(serializers.Serializer):
    card = serializers.CharField(help_text="About 640 px wide, WebP; a path on this host.")
    detail = serializers.CharField(help_text="About 1280 px wide, WebP; a path on this host.")


class DropSerializer(serializers.ModelSerializer):
    """The drop as the API, the pages and the sockets show it (camelCase, as the Node service)."""

    availableStock = serializers.IntegerField(source="available_stock", read_only=True)
    totalStock = serializers.IntegerField(source="total_stock", read_only=True)
    dropStartTime = serializers.DateTimeField(source="drop_start_time", read_only=True)
    dropEndTime = serializers.DateTimeField(
        source="drop_end_time", read_only=True, allow_null=True, help_text="null: no end."
    )
    purchaseLimit = serializers.IntegerField(source="purchase_limit", read_only=True)
    styleCode = serializers.CharField(source="style_code", read_only=True)
    photo = serializers.SerializerMethodField(help_text="null: no photo (pages draw a shoe).")
    version = serializers.IntegerField(source="stock_version", read_only=True)
    recentPurchases = RecentPurchaseSerializer(
        source="recent_purchases", many=True, read_only=True, default=list
    )

    class Meta:
        model = Drop
        fields = [
            "id",
            "name",
            "colourway",
            "styleCode",
            "description",
            "photo",
            "price",
            "availableStock",
            "totalStock",
            "dropStartTime",
            "dropEndTime",
            "purchaseLimit",
            "version",
            "recentPurchases",
        ]
        read_only_fields = ["colourway", "description"]

    @extend_schema_field(PhotoSerializer(allow_null=True))
    def get_photo(self, drop: Drop) -> dict[str, str] | None:
        # URLs only, from the photo's name: the renditions were made when it was saved.
        return drop.photo_urls


class DropCreateSerializer(serializers.Serializer):
    # The schema states each field's rules (inventory_project.api_schema); the one rule
    # across fields, the end after the start, is in dropEndTime's description.
    name = serializers.CharField(max_length=200)
    price = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0"),
        help_text="Not negative; at most 8 digits before the point and 2 after.",
    )
    totalStock = serializers.IntegerField(min_value=1, max_value=1_000_000)
    dropStartTime = serializers.DateTimeField(required=False, help_text="Default: now.")
    dropEndTime = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="Must be after dropStartTime (400 otherwise); null or absent: no end.",
    )
    purchaseLimit = serializers.IntegerField(
        min_value=1, max_value=1_000, default=1, help_text="Units one buyer may buy in total."
    )

    def validate(self, data):
        # The default start is fixed here, not in the service, so an end already past is
        # a 400 and not a failed model constraint (a 500).
        data.setdefault("dropStartTime", timezone.now())
        start, end = data["dropStartTime"], data.get("dropEndTime")
        if end is not None and end <= start:
            raise serializers.ValidationError({"dropEndTime": ["Must be after dropStartTime."]})
        return data
