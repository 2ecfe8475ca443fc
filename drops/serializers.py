from decimal import Decimal

from django.utils import timezone

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from drops.models import Drop, Size

LABEL_MAX_LENGTH = Size._meta.get_field("label").max_length
STOCK_MAX = 1_000_000
SIZES_MAX = 100  # a size run far longer than any shoe's
# Refusals of a drop's creation by rules across fields. The schema states the first
# (DropCreateSchema); the other two it cannot (inventory_project/tests/
# schemathesis_hooks.py allows them).
ONE_OF_STOCKS = "Send exactly one of totalStock (a drop of one size) and sizes."
LABELS_NOT_UNIQUE = "Each size needs its own label."
NO_UNITS = "A drop needs at least one unit of stock."


class RecentPurchaseSerializer(serializers.Serializer):
    username = serializers.CharField()
    size = serializers.CharField(help_text="The label of the size bought.")
    timestamp = serializers.DateTimeField()


# A plain Serializer: a drop list serializes every size of every drop.
class SizeSerializer(serializers.Serializer):
    """One size of a drop's run, with its own stock."""

    id = serializers.IntegerField(read_only=True, help_text="What a reserve names.")
    label = serializers.CharField(read_only=True, help_text='As buyers see it, e.g. "US 9.5".')
    availableStock = serializers.IntegerField(source="available_stock", read_only=True)
    totalStock = serializers.IntegerField(source="total_stock", read_only=True)


class PhotoSerializer(serializers.Serializer):
    card = serializers.CharField(help_text="About 640 px wide, WebP; a path on this host.")
    detail = serializers.CharField(help_text="About 1280 px wide, WebP; a path on this host.")


class DropSerializer(serializers.ModelSerializer):
    """The drop as the API, the pages and the sockets show it (camelCase, as the Node service)."""

    # The stock fields are sums over the sizes: callers prefetch ``sizes``
    # (drops.selectors), or each drop costs a query.
    availableStock = serializers.IntegerField(
        source="available_stock", read_only=True, help_text="Summed over the sizes."
    )
    totalStock = serializers.IntegerField(
        source="total_stock", read_only=True, help_text="Summed over the sizes."
    )
    sizes = SizeSerializer(
        many=True,
        read_only=True,
        help_text='The size run, smallest first; one for a drop of one size ("One size").',
    )
    dropStartTime = serializers.DateTimeField(source="drop_start_time", read_only=True)
    dropEndTime = serializers.DateTimeField(
        source="drop_end_time", read_only=True, allow_null=True, help_text="null: no end."
    )
    purchaseLimit = serializers.IntegerField(source="purchase_limit", read_only=True)
    styleCode = serializers.CharField(source="style_code", read_only=True)
    photo = serializers.SerializerMethodField(help_text="null: no photo (pages draw a shoe).")
    version = serializers.IntegerField(
        source="stock_version",
        read_only=True,
        help_text="Grows with every stock change of any size: a live update with a lower "
        "version is stale.",
    )
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
            "sizes",
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


class SizeStockSerializer(serializers.Serializer):
    label = serializers.CharField(
        max_length=LABEL_MAX_LENGTH, help_text='e.g. "US 9.5"; unique within the run.'
    )
    stock = serializers.IntegerField(min_value=0, max_value=STOCK_MAX)


def _identity_field(model_field: str) -> serializers.CharField:
    field = Drop._meta.get_field(model_field)
    return serializers.CharField(
        max_length=field.max_length, required=False, allow_blank=True, help_text=field.help_text
    )


class DropCreateSerializer(serializers.Serializer):
    # The schema states each field's rules (inventory_project.api_schema), and that
    # exactly one of totalStock and sizes is sent (DropCreateSchema). The rules across
    # fields it cannot state are in descriptions: the end after the start, unique
    # labels, at least one unit in a run.
    name = serializers.CharField(max_length=200)
    colourway = _identity_field("colourway")
    styleCode = _identity_field("style_code")
    description = _identity_field("description")
    price = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0"),
        help_text="Not negative; at most 8 digits before the point and 2 after.",
    )
    totalStock = serializers.IntegerField(
        min_value=1,
        max_value=STOCK_MAX,
        required=False,
        help_text="A drop of one size: its stock. Send this or sizes, not both.",
    )
    sizes = SizeStockSerializer(
        many=True,
        required=False,
        min_length=1,
        max_length=SIZES_MAX,
        help_text="A drop sold by size: its run, smallest first. Each label once (after "
        "trimming spaces); at least one unit in all. Send this or totalStock, not both.",
    )
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
        if ("totalStock" in data) == ("sizes" in data):
            if "sizes" in data:
                raise serializers.ValidationError({"sizes": [ONE_OF_STOCKS]})
            raise serializers.ValidationError({"totalStock": [ONE_OF_STOCKS]})
        sizes = data.get("sizes")
        if sizes is not None:
            # Refused here, by field, rather than as the service's invalid_size_run.
            labels = [size["label"] for size in sizes]
            if len(set(labels)) != len(labels):
                raise serializers.ValidationError({"sizes": [LABELS_NOT_UNIQUE]})
            if not any(size["stock"] for size in sizes):
                raise serializers.ValidationError({"sizes": [NO_UNITS]})
        # The default start is fixed here, not in the service, so an end already past is
        # a 400 and not a failed model constraint (a 500).
        data.setdefault("dropStartTime", timezone.now())
        start, end = data["dropStartTime"], data.get("dropEndTime")
        if end is not None and end <= start:
            raise serializers.ValidationError({"dropEndTime": ["Must be after dropStartTime."]})
        return data


class DropCreateSchema(OpenApiSerializerExtension):
    """States in the schema that a drop is created with totalStock or sizes, not both."""

    target_class = DropCreateSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["oneOf"] = [{"required": ["totalStock"]}, {"required": ["sizes"]}]
        return schema
