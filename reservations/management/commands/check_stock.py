from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from reservations.selectors import stock_audit


class Command(BaseCommand):
    help = "Verify total == available + active reservations + purchases for every drop."

    def handle(self, *args, **options):
        with transaction.atomic():
            # One snapshot for all the counts, so concurrent sales cannot skew them.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            report = stock_audit()
        broken = [row for row in report if not row["ok"]]
        for row in report:
            line = (
                "{status} drop {drop_id} {name!r}: total {total} = available {available}"
                " + active {active} + purchased {purchased}"
            ).format(status="OK  " if row["ok"] else "FAIL", **row)
            self.stdout.write(line)
        if broken:
            raise CommandError(f"Stock invariant broken for {len(broken)} drop(s).")
        self.stdout.write(self.style.SUCCESS(f"{len(report)} drop(s) consistent."))
