from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from drops.models import Drop, size_run
from inventory_project.devservices import demo_credentials, demo_password
from reservations import services

DEMO_DROP = "Air Jordan 1 Retro High OG 'Lost & Found'"
UPCOMING_DROP = "Dunk Low Retro 'Panda'"
ONE_SIZE_DROP = "Everyday Cushioned Crew Socks 'Chicago'"
# Pairs per size, most in the middle of the run, as a shop stocks it; the small sizes
# sell out first in the demo.
DEMO_RUN = dict(zip(size_run(7, 12), [1, 3, 5, 8, 12, 14, 14, 12, 10, 6, 4], strict=True))
UPCOMING_RUN = dict(zip(size_run(6, 13, 1), [2, 4, 6, 9, 9, 7, 4, 2], strict=True))
# What the demo drops are; no photos, so the shop shows its drawn fallback shoes.
IDENTITY = {
    DEMO_DROP: {
        "colourway": "Varsity Red/Black/Sail/Muslin",
        "style_code": "DZ5485-612",
        "description": "The 1985 Chicago colourway, aged: cracked collar leather, a "
        "yellowed midsole and a box made to look found in a stockroom.",
    },
    UPCOMING_DROP: {
        "colourway": "White/Black",
        "style_code": "DD1391-100",
        "description": "Smooth white leather with black overlays on a flat cupsole; "
        "the everyday low that goes with everything.",
    },
    # One size: sold as every drop was before sizes, with no size to choose.
    ONE_SIZE_DROP: {
        "colourway": "Varsity Red/White",
        "style_code": "SX7676-657",
        "description": "Cushioned crew socks in the Chicago colours; one size fits US 8 to 12.",
    },
}


class Command(BaseCommand):
    help = "Create a demo staff user, a demo buyer and demo drops (for the quick start only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Empty the database first (every drop, order and account); DEBUG only.",
        )

    def handle(self, *args, reset=False, **options):
        if reset:
            # flush empties every table: harmless on the quick start's own database,
            # ruinous on any other that DATABASE_URL might name.
            if not settings.DEBUG:
                raise CommandError("--reset empties the whole database; it needs DEBUG=1.")
            call_command("flush", interactive=False, verbosity=0)
            self.stdout.write("Database emptied.")
        password = demo_password()
        User = get_user_model()
        for username, staff in (("staff", True), ("buyer", False)):
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = staff
            user.set_password(password)
            user.save()
        now = timezone.now()
        if not Drop.objects.filter(name=DEMO_DROP, sizes__available_stock__gt=0).exists():
            services.create_drop(
                name=DEMO_DROP, price=Decimal("180.00"), sizes=list(DEMO_RUN.items())
            )
        if not Drop.objects.filter(name=ONE_SIZE_DROP, sizes__available_stock__gt=0).exists():
            services.create_drop(name=ONE_SIZE_DROP, price=Decimal("22.00"), total_stock=150)
        if not Drop.objects.filter(name=UPCOMING_DROP, drop_start_time__gt=now).exists():
            services.create_drop(
                name=UPCOMING_DROP,
                price=Decimal("115.00"),
                sizes=list(UPCOMING_RUN.items()),
                drop_start_time=now + timedelta(minutes=10),
            )
        for name, identity in IDENTITY.items():
            Drop.objects.filter(name=name).update(**identity)
        self.stdout.write(self.style.SUCCESS("Demo data ready.\n" + demo_credentials(password)))
