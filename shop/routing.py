from django.urls import path

from shop.consumers import DropConsumer

websocket_urlpatterns = [
    path("ws/drops/", DropConsumer.as_asgi()),
    path("ws/drops/<int:drop_id>/", DropConsumer.as_asgi()),
]
