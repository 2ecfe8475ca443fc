from django.conf import settings
from django.db import connection

import redis
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

_redis_client = None


def _redis() -> redis.Redis:
    global _redis_client
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
    return _redis_client


class HealthView(APIView):
    """200 when PostgreSQL and Redis answer; 503 naming the one that does not."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict, 503: dict})
    def get(self, request):
        failed = []
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:
            failed.append("postgresql")
        try:
            _redis().ping()
        except Exception:
            failed.append("redis")
        if failed:
            return Response(
                {"error": f"Unavailable: {', '.join(failed)}.", "failed": failed}, status=503
            )
        return Response({"status": "OK", "message": "PostgreSQL and Redis are reachable."})
