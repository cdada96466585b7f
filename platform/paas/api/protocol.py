"""What every response of the Heroku Platform API v3 carries, whatever its resource.

- `Accept: application/vnd.heroku+json; version=3` (or plain JSON, or none) is served;
  another version of Heroku's API is refused with 400, before authentication.
- `Request-Id`: the client's own when it sent a sane one, else a new UUID; every response
  has one, errors included, and `paas audit` keeps it beside the change it made.
- `RateLimit-Remaining`: the caller's remaining API calls, when auth counted them.
- Lists answer through `listing`, which applies the Range header (paas.domain.ranges):
  200 with everything, or 206 with `Next-Range` when more remain.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence

from flask import Response, g, jsonify, request

from paas.domain import ranges
from paas.domain.errors import PaasError

_VERSION = re.compile(r"application/vnd\.heroku\+json\s*;\s*version=([^\s,;]+)")
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._,:=-]{0,199}")


class UnsupportedVersion(PaasError):
    id = "bad_request"
    status = 400


def begin() -> None:
    """Runs first on every request: names it, then checks the API version asked for."""
    given = request.headers.get("Request-Id", "")
    g.paas_request_id = given if _SANE_REQUEST_ID.fullmatch(given) else str(uuid.uuid4())
    asked = _VERSION.search(request.headers.get("Accept", ""))
    if asked is not None and asked.group(1).split(".")[0] != "3":
        raise UnsupportedVersion(
            f"this API speaks version 3 of Heroku's Platform API, not {asked.group(1)}: "
            "send Accept: application/vnd.heroku+json; version=3"
        )


def finish(response: Response) -> Response:
    response.headers["Request-Id"] = request_id()
    remaining = g.get("paas_rate_remaining")
    if remaining is not None:
        response.headers["RateLimit-Remaining"] = str(remaining)
    return response


def request_id() -> str:
    found = g.get("paas_request_id")
    return found if isinstance(found, str) else "none"


def listing(
    items: Sequence[ranges.Item],
    fields: Sequence[str],
    shape: Callable[[list[ranges.Item]], list[ranges.Item]] | None = None,
) -> tuple[Response, int]:
    """A list answer paged by the request's Range header; `fields` are those a client may
    range over, the first being the default order. `shape`, when given, makes the page's
    items only into what is answered (items then need only the range fields and what
    `shape` reads), so a page of 15 costs 15 full items, not all of them."""
    chosen = ranges.page(items, ranges.parse(request.headers.get("Range"), fields))
    response = jsonify(chosen.items if shape is None else shape(chosen.items))
    response.headers["Content-Range"] = chosen.content_range
    response.headers["Accept-Ranges"] = ", ".join(fields)
    if chosen.next_range is None:
        return response, 200
    response.headers["Next-Range"] = chosen.next_range
    return response, 206
