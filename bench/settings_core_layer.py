"""The project's settings with channels_redis' list-based RedisChannelLayer instead of
the pub/sub layer; for bench/ws_fanout.py only (DJANGO_SETTINGS_MODULE)."""

from inventory_project.settings import *  # noqa: F403

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,  # noqa: F405
                    # redis-py 8 reads with a 5 s socket timeout by default, which ends the
                    # layer's blocking 5 s BZPOPMIN and crashes every idle consumer
                    # (django/channels_redis#422); and it caps a pool at 100 connections,
                    # fewer than a few hundred sockets connecting at once need.
                    "socket_timeout": None,
                    "max_connections": 1000,
                }
            ],
            "prefix": CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],  # noqa: F405
        },
    }
}
