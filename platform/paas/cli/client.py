"""The CLI's HTTP client for the paas API, over stdlib urllib only.

Job: turn one method call into one authenticated JSON request and give back the decoded
answer, checked to be the shape (object or list) the caller expects.
Invariant: every failure leaves this module as a `PaasCliError` carrying one line a user can
act on — the API's own `message` for HTTP errors, a hint for an unreachable server — so the
CLI has a single place that prints errors.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO

JsonObject = dict[str, Any]

DEFAULT_TIMEOUT = 30.0
MAX_PAGES = 1000  # of at most 1,000 items each (Heroku's largest page)
USER_AGENT = "paas-cli"


class PaasCliError(Exception):
    """Base of every error the CLI reports as the one line `error: MESSAGE` with exit 1."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and its hint, on one line, ready for stderr."""
        text = f"{self.message} ({self.hint})" if self.hint else self.message
        return " ".join(text.split())  # a multi-line server message must stay one line


class ApiError(PaasCliError):
    """The API answered with an HTTP error; `message` is the API's own message."""

    def __init__(self, status: int, error_id: str, message: str, hint: str | None = None):
        super().__init__(message, hint)
        self.status = status
        self.error_id = error_id


class ApiUnreachable(PaasCliError):
    """No HTTP answer at all: connection refused, DNS failure, timeout."""


class ApiClient:
    """Typed calls for each API resource; one instance per API address and token."""

    def __init__(self, api_url: str, token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # -- transport ---------------------------------------------------------------------

    def download(self, path: str, target: BinaryIO) -> int:
        """Streams a binary answer (an image archive) into target; returns its size."""
        req = urllib.request.Request(self.api_url + path, method="GET")
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("User-Agent", USER_AGENT)
        size = 0
        with self._opened(req) as response:
            while chunk := response.read(1 << 20):
                target.write(chunk)
                size += len(chunk)
        return size

    @contextmanager
    def _opened(self, req: urllib.request.Request) -> Iterator[Any]:
        """urlopen with the API's errors turned into PaasCliError subclasses."""
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                yield response
        except urllib.error.HTTPError as error:
            with error:
                raise _api_error(error.code, error.reason, error.read()) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ApiUnreachable(
                f"cannot reach the paas API at {self.api_url}: {reason}",
                "is `paas server` running? check PAAS_API_URL or `paas login --api-url`",
            ) from None

    def export_image(self, app: str, version: str, target: BinaryIO) -> int:
        return self.download(_app_path(app, "releases", version, "image"), target)

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON answer (None for an empty body)."""
        return self._exchange(method, path, body, query)[0]

    def _exchange(
        self,
        method: str,
        path: str,
        body: object = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Any, Mapping[str, str]]:
        """One request: its decoded JSON answer and the response's headers."""
        url = self.api_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", USER_AGENT)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with self._opened(req) as response:
            raw: bytes = response.read()
            answered = dict(response.headers.items())
        if not raw.strip():
            return None, answered
        try:
            return json.loads(raw), answered
        except ValueError:
            raise ApiError(
                200,
                "bad_response",
                f"the API at {self.api_url} answered {method} {path} "
                "with something that is not JSON",
            ) from None

    def _object(self, method: str, path: str, body: object = None, **query: str) -> JsonObject:
        answer = self.request(method, path, body, query or None)
        if not isinstance(answer, dict):
            raise _shape_error(method, path, "an object")
        return answer

    def _list(
        self, method: str, path: str, body: object = None, first: str | None = None
    ) -> list[JsonObject]:
        """A list answer, every page of it: a 206 names the next in `Next-Range`. `first`:
        the Range of the first page (the API's pages are 200 items unless asked for more)."""
        found: list[JsonObject] = []
        headers: dict[str, str] = {} if first is None else {"Range": first}
        for _ in range(MAX_PAGES):
            answer, answered = self._exchange(method, path, body, None, headers)
            if not isinstance(answer, list) or not all(isinstance(i, dict) for i in answer):
                raise _shape_error(method, path, "a list of objects")
            found.extend(answer)
            following = {k.lower(): v for k, v in answered.items()}.get("next-range")
            if not following:
                return found
            headers = {"Range": following}
        raise _shape_error(method, path, f"a list of at most {MAX_PAGES} pages")

    # -- resources ---------------------------------------------------------------------

    def account(self) -> JsonObject:
        """GET /account: who the token belongs to."""
        return self._object("GET", "/account")

    def list_apps(self) -> list[JsonObject]:
        return self._list("GET", "/apps", first="name ..; max=1000")

    def create_app(self, name: str | None = None, stack: str | None = None) -> JsonObject:
        body = {k: v for k, v in (("name", name), ("stack", stack)) if v is not None}
        return self._object("POST", "/apps", body)

    def get_app(self, app: str) -> JsonObject:
        return self._object("GET", _app_path(app))

    def destroy_app(self, app: str) -> JsonObject:
        return self._object("DELETE", _app_path(app))

    def config_vars(self, app: str) -> dict[str, str]:
        return self._object("GET", _app_path(app, "config-vars"))

    def update_config_vars(self, app: str, changes: dict[str, str | None]) -> dict[str, str]:
        """PATCH config vars; a None value unsets the key. Answers the whole map."""
        return self._object("PATCH", _app_path(app, "config-vars"), changes)

    def formation(self, app: str) -> list[JsonObject]:
        return self._list("GET", _app_path(app, "formation"))

    def scale(self, app: str, quantities: dict[str, int]) -> list[JsonObject]:
        updates = [{"type": kind, "quantity": n} for kind, n in quantities.items()]
        return self._list("PATCH", _app_path(app, "formation"), {"updates": updates})

    def resize(self, app: str, sizes: dict[str, str]) -> list[JsonObject]:
        updates = [{"type": kind, "size": size} for kind, size in sizes.items()]
        return self._list("PATCH", _app_path(app, "formation"), {"updates": updates})

    def set_stack(self, app: str, stack: str) -> JsonObject:
        return self._object("PATCH", _app_path(app), {"stack": stack})

    def stack(self, name: str, log_offset: int = 0) -> JsonObject:
        """GET /stacks/NAME: its build state and its build log from `log_offset` on."""
        return self._object(
            "GET", f"/stacks/{urllib.parse.quote(name, safe='')}", log_offset=str(log_offset)
        )

    def dynos(self, app: str) -> list[JsonObject]:
        return self._list("GET", _app_path(app, "dynos"))

    def restart(self, app: str, target: str | None = None) -> JsonObject:
        """Restart every dyno, or those of one type (`web`), or one dyno (`web.1`)."""
        path = _app_path(app, "dynos") if target is None else _app_path(app, "dynos", target)
        return self._object("DELETE", path)

    def releases(self, app: str) -> list[JsonObject]:
        """Releases, newest last."""
        return self._list("GET", _app_path(app, "releases"))

    def rollback(self, app: str, version: int | None = None) -> JsonObject:
        """Release again the given version, or the previous one; answers the new release."""
        body = {} if version is None else {"release": version}
        return self._object("POST", _app_path(app, "releases"), body)

    def builds(self, app: str) -> list[JsonObject]:
        return self._list("GET", _app_path(app, "builds"))

    def buildpacks(self, app: str) -> list[JsonObject]:
        return self._list("GET", _app_path(app, "buildpack-installations"))

    def set_buildpacks(self, app: str, urls: list[str]) -> list[JsonObject]:
        updates = [{"buildpack": url} for url in urls]
        return self._list("PUT", _app_path(app, "buildpack-installations"), {"updates": updates})

    def domains(self, app: str) -> list[JsonObject]:
        return self._list("GET", _app_path(app, "domains"))

    def add_domain(self, app: str, hostname: str) -> JsonObject:
        return self._object("POST", _app_path(app, "domains"), {"hostname": hostname})

    def remove_domain(self, app: str, hostname: str) -> JsonObject:
        return self._object("DELETE", _app_path(app, "domains", hostname))

    def log_lines(
        self,
        app: str,
        *,
        num: int | None = None,
        after: object = None,
        dyno: str | None = None,
        source: str | None = None,
    ) -> JsonObject:
        """GET log lines: the last `num`, or those after `cursor`. Answers {lines, cursor}."""
        query: dict[str, str] = {}
        if num is not None:
            query["num"] = str(num)
        if after is not None:
            query["after"] = str(after)
        if dyno is not None:
            query["dyno"] = dyno
        if source is not None:
            query["source"] = source
        page = self._object("GET", _app_path(app, "log-lines"), **query)
        if not isinstance(page.get("lines"), list):
            raise _shape_error("GET", _app_path(app, "log-lines"), "an object with lines")
        return page


def _app_path(app: str, *parts: str) -> str:
    """`/apps/APP/PART...`, each segment quoted so a name cannot change the path."""
    return "/" + "/".join(urllib.parse.quote(p, safe="") for p in ("apps", app, *parts))


def _api_error(status: int, reason: str, raw: bytes) -> ApiError:
    """Build the error from the API's `{"id", "message"}` body, or from the status line."""
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        error_id = str(payload.get("id", "error"))
        message: str = payload["message"]
    else:
        error_id, message = "error", f"the API answered HTTP {status} {reason}".strip()
    hint = "run `paas login` or set PAAS_API_TOKEN" if status == 401 else None
    return ApiError(status, error_id, message, hint)


def _shape_error(method: str, path: str, expected: str) -> ApiError:
    return ApiError(200, "bad_response", f"the API answered {method} {path} without {expected}")
