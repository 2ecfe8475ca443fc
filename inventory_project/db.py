"""Prepared, pipelined statements for the hot path (reserve and its token lookup).

Django's psycopg backend binds parameters client-side, so PostgreSQL parses and plans
every statement anew; for the reserve statement that planning cost about as much as
running it (docs/benchmarks.md, "Where a reserve's time goes"). A cursor with
server-side binding and ``prepare=True`` makes psycopg prepare each statement once per
connection and execute it by name afterwards; only because the settings give psycopg a
``prepare_threshold`` (Django's default, None, makes it ignore ``prepare=True``).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

import psycopg


def fetch_one(sql: str, params: dict | tuple) -> tuple | None:
    """Run ``sql`` as a prepared statement on Django's connection; return its first row.

    Runs in whatever transaction Django's connection is in. Database errors come out
    as Django's (``django.db.IntegrityError`` and so on), and a broken connection is
    noticed and replaced at the end of the request as for any ORM query.
    """
    with prepared_cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


@contextmanager
def pipelined_cursor() -> Iterator[psycopg.Cursor]:
    """A prepared-statement cursor in psycopg's pipeline mode.

    What is executed inside, and the COMMIT of a transaction that ends inside, travel
    to PostgreSQL together: the server runs them back to back without waiting for
    this process between them. Results are read after the commit (``fetchone`` after
    the ``transaction.atomic`` block), and errors surface there too, as Django's.
    """
    with prepared_cursor() as cursor, connection.connection.pipeline():
        yield cursor


@contextmanager
def prepared_cursor() -> Iterator[psycopg.Cursor]:
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor
