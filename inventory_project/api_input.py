"""DRF parsing and authentication that turn hostile input into 4xx, never a 500."""

import re
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection

from rest_framework import authentication, exceptions, parsers
from rest_framework.authtoken.models import Token

from inventory_project import db

_TOKEN_KEY = re.compile(r"[0-9a-f]{40}")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:  # DRF only catches ValueError
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication with its lookup as one prepared statement.

    Every API request authenticates, so the lookup is on the hot path: through the ORM
    it was the largest single cost of a reserve (docs/benchmarks.md). Same answers as
    DRF's: the token's user, 401 for an unknown key or an inactive user.
    """

    def authenticate_credentials(self, key):
        # A key of another shape cannot exist; don't send it (NUL bytes and all) to SQL.
        if not _TOKEN_KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        sql, user_fields = _token_user_query()
        row = db.fetch_one(sql, (key,))
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = get_user_model().from_db(connection.alias, user_fields, row[1:])
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        token = Token.from_db(
            connection.alias, ["key", "user_id", "created"], (key, user.pk, row[0])
        )
        token.user = user
        return user, token


@cache
def _token_user_query() -> tuple[str, list[str]]:
    """SELECT token.created and every column of its user, by token key."""
    User = get_user_model()
    fields = User._meta.concrete_fields
    columns = ", ".join(f'u."{field.column}"' for field in fields)
    sql = (
        f'SELECT t."created", {columns} FROM "{Token._meta.db_table}" t'
        f' JOIN "{User._meta.db_table}" u ON u."{User._meta.pk.column}" = t."user_id"'
        ' WHERE t."key" = %s'
    )
    return sql, [field.attname for field in fields]
