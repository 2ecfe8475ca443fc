import functools

from django.conf import settings
from django.db import connection

import redis
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


@functools.cache
def _redis(url: str) -> redis.Redis:
    """One client (and connection pool) per URL for the life of the process."""
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


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
            _redis(settings.REDIS_URL).ping()
        except Exception:
            failed.append("redis")
        if failed:
            return Response(
                {"error": f"Unavailable: {', '.join(failed)}.", "failed": failed}, status=503
            )
        return Response({"status": "OK", "message": "PostgreSQL and Redis are reachable."})
