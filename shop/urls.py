from django.urls import path

from shop import views

urlpatterns = [
    path("", views.drop_list, name="drop-list"),
    path("drops/<id:pk>/", views.drop_detail, name="drop-detail"),
    path("orders/", views.my_orders, name="my-orders"),
]
