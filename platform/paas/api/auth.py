"""Authentication: `Authorization: Bearer TOKEN`, or HTTP Basic with the token as password
(what git sends). Tokens are compared by hash; the database never holds a token itself."""

from __future__ import annotations

import base64

from flask import request

from paas.api.context import ctx
from paas.errors import Unauthorized


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except ValueError:
            return None
        return decoded.partition(":")[2] or None
    return None


def require_token() -> None:
    token = presented_token()
    if token is None:
        raise Unauthorized("authentication required: run `paas login` or set PAAS_API_TOKEN")
    if ctx().store.token_owner(token) is None:
        raise Unauthorized("invalid credentials: the API token was not accepted")
