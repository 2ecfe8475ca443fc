from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from reservations.selectors import stock_audit


class Command(BaseCommand):
    help = (
        "Verify total == available + active reservations + purchases for every size of"
        " every drop, and for every drop."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            # One snapshot for all the counts, so concurrent sales cannot skew them.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            report = stock_audit()
        broken = [row for row in report if not row["ok"]]
        for row in report:
            line = (
                "{status} drop {drop_id} {name!r}{size}: total {total} = available {available}"
                " + active {active} + purchased {purchased}"
            ).format(
                **{
                    **row,
                    "status": "OK  " if row["ok"] else "FAIL",
                    "size": "" if row["size"] is None else f" size {row['size']!r}",
                }
            )
            self.stdout.write(line)
        drops = sum(row["size"] is None for row in report)
        if broken:
            raise CommandError(f"Stock invariant broken in {len(broken)} line(s).")
        self.stdout.write(self.style.SUCCESS(f"{drops} drop(s), every size, consistent."))
