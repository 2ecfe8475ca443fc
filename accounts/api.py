from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from drf_spectacular.utils import extend_schema
from rest_framework import parsers, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response

from inventory_project.api_input import JSONParser

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    isStaff = serializers.BooleanField(source="is_staff", read_only=True)
    dateJoined = serializers.DateTimeField(source="date_joined", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "isStaff", "dateJoined"]


class SignUpSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)

    def validate_username(self, value):
        # Checked as create_user will store it (NFKC), so "\ufb00" cannot join "FF".
        value = User.normalize_username(value)
        # The model's own validator (letters, digits and @.+-_), then uniqueness.
        try:
            User._meta.get_field("username").run_validators(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("This username is taken.")
        return value

    def validate(self, data):
        try:
            validate_password(data["password"], User(username=data["username"]))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": exc.messages}) from None
        return data


class UserViewSet(viewsets.GenericViewSet):
    serializer_class = UserSerializer

    def get_permissions(self):
        if self.action == "create":
            return [AllowAny()]
        return [IsAdminUser()]

    def list(self, request):
        return Response({"users": UserSerializer(User.objects.order_by("id"), many=True).data})

    @extend_schema(request=SignUpSerializer, responses={201: UserSerializer})
    def create(self, request):
        serializer = SignUpSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    username=data["username"], password=data["password"]
                )
                token = Token.objects.create(user=user)
        except IntegrityError:  # lost a race for the same username
            raise serializers.ValidationError({"username": ["This username is taken."]}) from None
        return Response(
            {"user": {"id": user.pk, "username": user.username}, "token": token.key},
            status=status.HTTP_201_CREATED,
        )


class TokenView(ObtainAuthToken):
    """POST {username, password} -> {token}."""

    parser_classes = (parsers.FormParser, parsers.MultiPartParser, JSONParser)
