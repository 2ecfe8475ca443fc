from django.conf import settings


def live_settings(request):
    """Where the pages' script opens its socket (empty: same origin, /ws/)."""
    return {"WEBSOCKET_URL": settings.WEBSOCKET_URL}
