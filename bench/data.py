"""What the suites read and write in the bench database directly, in SQL: drops with
their sizes, a drop's stock, the stock invariant of each size; and the databases
themselves (created and dropped on the server of DATABASE_URL).

SQL, not reservations.services: a manage.py round trip costs seconds of Django
start-up, and nothing watches a drop before it exists. The suites do not import
Django, so the tables are named here as the migrations create them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import psycopg

# A drop sold as one stock has one size of this label, as services.create_drop and
# drops/migrations/0003_sizes.py make it; reserving it needs no size in the request.
ONE_SIZE = "One size"
DROP_FIELDS = {"name", "price", "drop_start_time", "drop_end_time", "purchase_limit"}

# The drop and its sizes in one statement, so nothing ever sees a drop without sizes.
# Positions follow the run order (0 for the first size).
_INSERT_DROP = """
    WITH new_drop AS (
        INSERT INTO drops_drop (name, price, drop_start_time, drop_end_time,
                                purchase_limit, created_at, updated_at)
        VALUES (%(name)s, %(price)s, coalesce(%(drop_start_time)s, now()),
                %(drop_end_time)s, %(purchase_limit)s, now(), now())
        RETURNING id
    )
    INSERT INTO drops_size (drop_id, label, position, total_stock, available_stock,
                            stock_version, updated_at)
    SELECT new_drop.id, size.label, size.position - 1, size.stock, size.stock, 0, now()
      FROM new_drop,
           unnest(%(labels)s::text[], %(stocks)s::integer[])
             WITH ORDINALITY AS size (label, stock, position)
    RETURNING drop_id
"""

# One row per size, in run order. One statement reads one snapshot, so a sale that
# commits meanwhile is either in every count or in none.
_SIZE_AUDIT = """
    SELECT s.label, s.total_stock, s.available_stock,
           (SELECT count(*) FROM reservations_reservation r
             WHERE r.size_id = s.id AND r.status = 'ACTIVE'),
           (SELECT count(*) FROM reservations_purchase p
              JOIN reservations_reservation r ON r.id = p.reservation_id
             WHERE r.size_id = s.id)
      FROM drops_size s
     WHERE s.drop_id = %s
     ORDER BY s.position, s.id
"""

Sql = Callable[..., list[tuple]]  # Stack.sql: one statement, its rows


def insert_drop(
    sql: Sql,
    *,
    stock: int | None = None,
    sizes: Sequence[tuple[str, int]] | None = None,
    **fields,
) -> int:
    """A new drop (open now unless drop_start_time is given) with its sizes; its id.

    Exactly one of stock (one size, ONE_SIZE) or sizes ((label, stock) in run order).
    """
    if (stock is None) == (sizes is None):
        raise TypeError("insert_drop: give exactly one of stock or sizes")
    unknown = set(fields) - DROP_FIELDS
    if unknown:
        raise TypeError(f"insert_drop: unknown fields {sorted(unknown)}")
    run = [(ONE_SIZE, stock)] if sizes is None else list(sizes)
    if not run:
        raise ValueError("insert_drop: a drop needs at least one size")
    values = {
        "name": f"Bench drop {secrets.token_hex(3)}",
        "price": "100.00",
        "drop_start_time": None,
        "drop_end_time": None,
        "purchase_limit": 1,
        **fields,
        "labels": [label for label, _ in run],
        "stocks": [units for _, units in run],
    }
    rows = sql(_INSERT_DROP, values)
    return rows[0][0]


def size_audit(sql: Sql, drop_id: int) -> list[dict]:
    """Per size of the drop, in run order: its stock, ACTIVE holds, purchases and whether
    total == available + holds + purchases."""
    return [
        {
            "label": label,
            "total": total,
            "available": available,
            "active": active,
            "purchased": purchased,
            "ok": total == available + active + purchased,
        }
        for label, total, available, active, purchased in sql(_SIZE_AUDIT, (drop_id,))
    ]


def with_database(url: str, name: str) -> str:
    """url with its database replaced by name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_sql(server_url: str, statement: str) -> None:
    """Run statement on the server of server_url, through its database if that exists."""
    try:
        db = psycopg.connect(server_url, autocommit=True)
    except psycopg.OperationalError:  # the URL's own database need not exist
        db = psycopg.connect(with_database(server_url, "postgres"), autocommit=True)
    with db:
        db.execute(statement)
