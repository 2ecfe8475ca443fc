"""DRF parsing and authentication that turn hostile input into 4xx, never a 500."""

import re

from rest_framework import authentication, exceptions, parsers

_TOKEN_KEY = re.compile(r"[0-9a-f]{40}")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:  # DRF only catches ValueError
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        # A key of another shape cannot exist; don't send it (NUL bytes and all) to SQL.
        if not _TOKEN_KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
