from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from drops import selectors
from drops.serializers import DropSerializer
from reservations import selectors as reservation_selectors


def drop_list(request):
    now = timezone.now()
    live = selectors.with_recent_purchases(selectors.live_drops(now))
    upcoming = selectors.with_recent_purchases(selectors.upcoming_drops(now))
    return render(request, "drops/drop_list.html", {
        "live_drops": live,
        "upcoming_drops": upcoming,
        "drops_json": DropSerializer([*live, *upcoming], many=True).data,
    })


def drop_detail(request, pk: int):
    drop = selectors.drop_with_recent_purchases(pk)
    if drop is None:
        raise Http404("Drop not found.")
    reservation = reservation_selectors.active_reservation(request.user, drop.pk)
    return render(request, "drops/drop_detail.html", {
        "drop": drop,
        "drop_json": DropSerializer(drop).data,
        "reservation": reservation,
    })


@login_required
def my_orders(request):
    return render(request, "drops/my_orders.html", {
        "reservations": reservation_selectors.user_reservations(request.user),
        "purchases": reservation_selectors.user_purchases(request.user),
    })
