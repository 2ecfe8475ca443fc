"""Seed buyers with API tokens and one hot drop for the reserve load test.

    DEBUG=1 python bench/seed_reserve.py --buyers 30000 --stock 1000000 --out var/bench

Writes <out>/tokens.txt (one token per line) and <out>/drop_id. Bench data only:
run it against a throwaway database.
"""

import argparse
import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_project.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402

from rest_framework.authtoken.models import Token  # noqa: E402

from reservations import services  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buyers", type=int, default=30000)
    parser.add_argument("--stock", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    User = get_user_model()
    run = secrets.token_hex(3)
    unusable = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"bench-{run}-{n}", password=unusable) for n in range(args.buyers)],
        batch_size=5000,
    )
    tokens = Token.objects.bulk_create(
        [Token(user=user, key=secrets.token_hex(20)) for user in users], batch_size=5000
    )
    drop = services.create_drop(name=f"Bench drop {run}", price="100.00", total_stock=args.stock)
    (args.out / "tokens.txt").write_text("\n".join(token.key for token in tokens) + "\n")
    (args.out / "drop_id").write_text(f"{drop.pk}\n")
    print(f"{len(tokens)} buyers, drop {drop.pk} with {args.stock} units -> {args.out}")


if __name__ == "__main__":
    main()
