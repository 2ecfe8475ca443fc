import secrets
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Create COUNT buyers with API tokens in bulk (benchmark data) and write the tokens, "
        "one per line. Passwords are unusable: hashing one per buyer would measure the hasher."
    )

    def add_arguments(self, parser):
        parser.add_argument("count", type=int)
        parser.add_argument("--out", default="-", help="token file; '-' (default) is stdout")
        parser.add_argument("--prefix", default="", help="username prefix; default bench-<hex>-")

    def handle(self, *args, count: int, out: str, prefix: str, **options):
        if count < 1:
            raise CommandError("count must be at least 1.")
        prefix = prefix or f"bench-{secrets.token_hex(4)}-"
        keys = [secrets.token_hex(20) for _ in range(count)]
        # COPY, not bulk_create: building 50,000 model instances takes ~10x longer.
        with transaction.atomic():
            _copy_users(prefix, count)
            _copy_tokens(prefix, keys)
        text = "\n".join(keys) + "\n"
        if out == "-":
            sys.stdout.write(text)
        else:
            Path(out).write_text(text)
            self.stderr.write(f"{count} buyers, tokens in {out}")


def _copy_users(prefix: str, count: int) -> None:
    User = get_user_model()
    # Every column as a saved User would have it, from one template with the model's
    # defaults; only the username varies.
    template = User(username="", password=make_password(None))
    fields = [f for f in User._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(getattr(template, f.attname), connection) for f in fields]
    at = fields.index(User._meta.get_field(User.USERNAME_FIELD))
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(User._meta.db_table)
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for n in range(count):
                values[at] = f"{prefix}{n}"
                copy.write_row(values)


def _copy_tokens(prefix: str, keys: list[str]) -> None:
    User = get_user_model()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE seed_buyer_keys (username text, key text)")
        with cursor.copy("COPY seed_buyer_keys (username, key) FROM STDIN") as copy:
            for n, key in enumerate(keys):
                copy.write_row((f"{prefix}{n}", key))
        cursor.execute(
            f"INSERT INTO {quote(Token._meta.db_table)} (key, user_id, created)"
            f" SELECT k.key, u.{quote(User._meta.pk.column)}, now() FROM seed_buyer_keys k"
            f" JOIN {quote(User._meta.db_table)} u"
            f" ON u.{quote(User._meta.get_field(User.USERNAME_FIELD).column)} = k.username"
        )
        # Dropped here, not ON COMMIT: inside an outer transaction (tests) no commit comes.
        cursor.execute("DROP TABLE seed_buyer_keys")
