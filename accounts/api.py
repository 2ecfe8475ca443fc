from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import (
    MinimumLengthValidator,
    NumericPasswordValidator,
    get_default_password_validators,
    validate_password,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import parsers, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response

from inventory_project import throttles
from inventory_project.api_input import JSONParser

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    isStaff = serializers.BooleanField(source="is_staff", read_only=True)
    dateJoined = serializers.DateTimeField(source="date_joined", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "isStaff", "dateJoined"]


_username = User._meta.get_field(User.USERNAME_FIELD)


class SignUpSerializer(serializers.Serializer):
    # The model's own limits, so the schema states them: length and its validator
    # (letters, digits and @.+-_), checked here as sent and in validate_username as stored.
    username = serializers.CharField(
        max_length=_username.max_length,
        validators=[User.username_validator],
        help_text="Letters, digits and @.+-_; refused (400) when taken, in any case.",
    )
    password = serializers.CharField(
        max_length=128,
        write_only=True,
        trim_whitespace=False,
        help_text=(
            "Checked by the configured password validators: the schema states the minimum "
            "length and 'not entirely digits'; a common password or one too similar to the "
            "username is refused (400) too."
        ),
    )

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


class SignUpSchema(OpenApiSerializerExtension):
    """States the configured password validators that a schema can express."""

    target_class = SignUpSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        password = schema["properties"].get("password")  # write-only: requests only
        if password is None:
            return schema
        # Read when the schema is built, so it follows AUTH_PASSWORD_VALIDATORS.
        for validator in get_default_password_validators():
            if isinstance(validator, MinimumLengthValidator):
                password["minLength"] = max(password.get("minLength", 0), validator.min_length)
            elif isinstance(validator, NumericPasswordValidator):
                # A character that is not a digit, and no NUL (no text field takes NUL).
                password["pattern"] = r"^[^\x00]*[^\x00\d][^\x00]*$"
        return schema


class TokenSerializer(AuthTokenSerializer):
    """Log-in: an account's username and password, for its API token."""

    # DRF's fields with sign-up's length limits, so the schema can state them.
    username = serializers.CharField(max_length=_username.max_length, write_only=True)
    password = serializers.CharField(
        max_length=128, write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )


class UserViewSet(viewsets.GenericViewSet):
    serializer_class = UserSerializer

    def get_permissions(self):
        if self.action == "create":
            return [AllowAny()]
        return [IsAdminUser()]

    def get_throttles(self):
        if self.action == "create":
            return [throttles.SignUpRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        responses=inline_serializer("UserList", {"users": UserSerializer(many=True)}),
    )
    def list(self, request):
        return Response({"users": UserSerializer(User.objects.order_by("id"), many=True).data})

    @extend_schema(
        request=SignUpSerializer,
        responses={
            201: inline_serializer(
                "SignedUp",
                {
                    "user": inline_serializer(
                        "NewUser",
                        {"id": serializers.IntegerField(), "username": serializers.CharField()},
                    ),
                    "token": serializers.CharField(help_text="For `Authorization: Token <token>`."),
                },
            )
        },
    )
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
    """POST {username, password} -> {token}.

    Guessing is limited per address (every attempt, and failed ones) and per username
    (failed ones), with the counters the HTML log-in form shares (accounts.views).
    """

    parser_classes = (parsers.FormParser, parsers.MultiPartParser, JSONParser)
    serializer_class = TokenSerializer
    throttle_classes = [throttles.LoginRateThrottle, throttles.LoginFailureThrottle]

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            throttles.record_login_failure(request, throttles.submitted_username(request.data))
            raise
