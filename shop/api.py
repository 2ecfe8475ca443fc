from django.db import transaction
from django.utils import timezone

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response

from drops import selectors as catalog
from drops.models import Drop
from drops.serializers import DropCreateSerializer, DropSerializer
from reservations import selectors, services

# Request key -> Drop field, for the product's identity.
IDENTITY_FIELDS = {
    "colourway": "colourway",
    "styleCode": "style_code",
    "description": "description",
}
LISTINGS = {
    "live": catalog.live_drops,
    "upcoming": catalog.upcoming_drops,
    "all": lambda now: catalog.all_drops(),
}


class DropViewSet(viewsets.GenericViewSet):
    queryset = Drop.objects.all()  # the browsable API's filter form asks for it on lists
    serializer_class = DropSerializer
    lookup_value_converter = "id"  # positive and within bigint (inventory_project.api_routes)

    def get_permissions(self):
        if self.action == "create":
            return [IsAdminUser()]
        return [AllowAny()]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status",
                enum=list(LISTINGS),
                default="live",
                description="live: started and not over; upcoming: not started yet",
            )
        ],
        responses=DropSerializer(many=True),
    )
    def list(self, request):
        listing = request.query_params.get("status", "live")
        if listing not in LISTINGS:
            raise ValidationError({"status": [f"Must be one of: {', '.join(LISTINGS)}."]})
        drops = selectors.with_recent_purchases(LISTINGS[listing](timezone.now()))
        return Response(DropSerializer(drops, many=True).data)

    def retrieve(self, request, pk: int):
        drop = selectors.drop_with_recent_purchases(pk)
        if drop is None:
            raise NotFound("Drop not found.")
        return Response(DropSerializer(drop).data)

    @extend_schema(
        request=DropCreateSerializer,
        responses={
            201: inline_serializer(
                "DropCreated", {"message": serializers.CharField(), "drop": DropSerializer()}
            )
        },
    )
    def create(self, request):
        serializer = DropCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sizes = data.get("sizes")
        with transaction.atomic():
            drop = services.create_drop(
                name=data["name"],
                price=data["price"],
                total_stock=data.get("totalStock"),
                sizes=None if sizes is None else [(s["label"], s["stock"]) for s in sizes],
                drop_start_time=data["dropStartTime"],
                drop_end_time=data.get("dropEndTime"),
                purchase_limit=data["purchaseLimit"],
            )
            # create_drop takes no identity fields; saved in its transaction, so the
            # drop is never seen without them.
            identity = {attr: data[key] for key, attr in IDENTITY_FIELDS.items() if data.get(key)}
            if identity:
                for attr, value in identity.items():
                    setattr(drop, attr, value)
                drop.save(update_fields=[*identity, "updated_at"])
        drop.recent_purchases = []
        return Response(
            {"message": "Drop created successfully", "drop": DropSerializer(drop).data},
            status=status.HTTP_201_CREATED,
        )
