import os
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from drops.models import Drop
from reservations import services

DEMO_DROP = "Air Demo 1 'Launch Day'"
UPCOMING_DROP = "Air Demo 2 'Night Run'"


class Command(BaseCommand):
    help = "Create a demo staff user, a demo buyer and demo drops (for the quick start only)."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "drop-demo-2026")
        User = get_user_model()
        for username, staff in (("staff", True), ("buyer", False)):
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = staff
            user.set_password(password)
            user.save()
        now = timezone.now()
        if not Drop.objects.filter(name=DEMO_DROP, available_stock__gt=0).exists():
            services.create_drop(name=DEMO_DROP, price=Decimal("180.00"), total_stock=100)
        if not Drop.objects.filter(name=UPCOMING_DROP, drop_start_time__gt=now).exists():
            services.create_drop(
                name=UPCOMING_DROP,
                price=Decimal("220.00"),
                total_stock=50,
                drop_start_time=now + timedelta(minutes=10),
            )
        self.stdout.write(
            self.style.SUCCESS(
                "Demo ready.\n"
                f"  staff (admin at /admin/): username 'staff', password '{password}'\n"
                f"  buyer:                    username 'buyer', password '{password}'\n"
                "  shop: http://127.0.0.1:8000/   API: http://127.0.0.1:8000/api/docs/"
            )
        )
