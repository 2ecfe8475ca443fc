from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from drops import selectors as catalog
from drops.serializers import DropSerializer
from reservations import selectors
from reservations.serializers import ReservationSerializer

# Stands for an object's id while a route is reversed; the page script puts the real id
# where "{id}" ends up (static/drops/api.js, route()).
_ID_SLOT = 987_654_321_987_654_321


def _route(name: str) -> str:
    return reverse(name, args=[_ID_SLOT]).replace(str(_ID_SLOT), "{id}")


def drop_list(request):
    now = timezone.now()
    live = selectors.with_recent_purchases(catalog.live_drops(now))
    upcoming = selectors.with_recent_purchases(catalog.upcoming_drops(now))
    for drop in (*live, *upcoming):
        drop.phase = drop.phase_at(now)
        drop.size_list = list(drop.sizes.all())
    return render(
        request,
        "drops/drop_list.html",
        {
            "live_drops": live,
            "upcoming_drops": upcoming,
            "drops_json": DropSerializer([*live, *upcoming], many=True).data,
            "page_urls": {"dropPage": _route("drop-detail")},
            "server_now": now,
        },
    )


def drop_detail(request, pk: int):
    now = timezone.now()
    drop = selectors.drop_with_recent_purchases(pk)
    if drop is None:
        raise Http404("Drop not found.")
    drop.phase = drop.phase_at(now)
    sizes = list(drop.sizes.all())
    reservation = selectors.active_reservation(request.user, drop.pk)
    purchased = 0
    if request.user.is_authenticated:
        purchased = selectors.user_purchases(request.user).filter(drop=drop).count()
    return render(
        request,
        "drops/drop_detail.html",
        {
            "drop": drop,
            "drop_json": DropSerializer(drop).data,
            # A drop of one size is sold as before sizes: no picker, no size named.
            "sizes": sizes if len(sizes) > 1 else [],
            "reservation": reservation,
            "reservation_json": ReservationSerializer(reservation).data if reservation else None,
            "purchased_count": purchased,
            "limit_reached": purchased >= drop.purchase_limit,
            "hold_seconds": settings.RESERVATION_TTL_SECONDS,
            # The API routes the page script calls, so no path is written into it.
            "page_urls": {
                "reserve": reverse("api:reserve", args=[drop.pk]),
                "purchase": _route("api:purchase"),
                "cancel": _route("api:cancel"),
                "reservations": reverse("api:reservations"),
            },
            "server_now": now,
        },
    )


@login_required
def my_orders(request):
    return render(
        request,
        "drops/my_orders.html",
        {
            "reservations": selectors.user_reservations(request.user),
            "purchases": selectors.user_purchases(request.user),
        },
    )
