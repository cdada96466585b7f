"""Heroku's log sessions on the real API: the logplex_url streams the log as server-sent
events without the API token (the URL's secret is the credential), `lines` of history
filtered by dyno, type and source; tails are bounded per API process."""

from __future__ import annotations

import time
from typing import Any

import pytest
from real_api import RealApi

from paas.api import log_sessions as log_api
from paas.state import log_sessions
from paas.state.logs import LogStore


def auth(api: RealApi) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token}"}


@pytest.fixture
def shop(real_api: RealApi) -> RealApi:
    real_api.client.post("/apps", json={"name": "shop"}, headers=auth(real_api))
    logs = LogStore(real_api.settings.logs_db_path)
    logs.append("shop", "app", "web.1", ["web one says hi"])
    logs.append("shop", "app", "web.2", ["web two says hi"])
    logs.append("shop", "app", "worker.1", ["worker says hi"])
    logs.event("shop", "api", "Scaled to web@2")
    return real_api


def session(api: RealApi, **body: Any) -> str:
    """A new session's logplex_url, as a path of the API."""
    made = api.client.post("/apps/shop/log-sessions", json=body, headers=auth(api))
    assert made.status_code == 201, made.get_json()
    url = made.get_json()["logplex_url"]
    assert url.startswith("http://localhost/log-sessions/") and len(url) > 60
    return str(url.removeprefix("http://localhost"))


def streamed(api: RealApi, **body: Any) -> list[str]:
    """The data lines of a session's stream, fetched WITHOUT the API token."""
    answer = api.client.get(session(api, **body))
    assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
    return [
        line.removeprefix("data: ")
        for line in answer.get_data(as_text=True).splitlines()
        if line.startswith("data: ")
    ]


def test_the_stream_is_the_log_in_logplex_format(shop: RealApi) -> None:
    lines = streamed(shop, lines=4)
    assert [line.split(" ", 1)[1] for line in lines] == [
        "app[web.1]: web one says hi",
        "app[web.2]: web two says hi",
        "app[worker.1]: worker says hi",
        "paas[api]: Scaled to web@2",
    ]
    assert lines[0].split(" ", 1)[0].endswith("+00:00")  # the ISO 8601 time, in UTC


def test_lines_dyno_type_and_source_filter_the_history(shop: RealApi) -> None:
    assert [line.split(" ", 1)[1] for line in streamed(shop, lines=1)] == [
        "paas[api]: Scaled to web@2"
    ]
    assert [line.split(" ")[1] for line in streamed(shop, dyno="web")] == [
        "app[web.1]:",
        "app[web.2]:",
    ]
    assert [line.split(" ")[1] for line in streamed(shop, dyno="web.2")] == ["app[web.2]:"]
    platform = streamed(shop, source="heroku")
    assert [line.split(" ", 1)[1] for line in platform][-1] == "paas[api]: Scaled to web@2"
    assert all(" paas[" in line for line in platform)


def test_an_unknown_or_expired_session_is_404(
    shop: RealApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = session(shop)
    assert shop.client.get(path + "x").status_code == 404
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + log_sessions.TTL_SECONDS + 1)
    gone = shop.client.get(path)
    assert gone.status_code == 404 and gone.get_json()["id"] == "not_found"


def test_only_the_stream_is_served_without_a_token(shop: RealApi) -> None:
    assert shop.client.post("/apps/shop/log-sessions", json={}).status_code == 401
    assert shop.client.get("/apps/shop/log-lines").status_code == 401


def test_past_max_tails_a_tail_is_refused_with_429(shop: RealApi) -> None:
    held = [log_api.TAILS.acquire(blocking=False) for _ in range(log_api.MAX_TAILS)]
    try:
        assert all(held)
        refused = shop.client.get(session(shop, tail=True))
        assert refused.status_code == 429 and refused.get_json()["id"] == "rate_limit"
        assert shop.client.get(session(shop)).status_code == 200  # a plain read still goes
    finally:
        for _ in held:
            log_api.TAILS.release()


def test_a_tail_streams_new_lines_and_frees_its_slot_when_closed(shop: RealApi) -> None:
    answer = shop.client.get(session(shop, lines=0, tail=True))
    stream = iter(answer.response)
    assert next(stream) == b": tailing\n\n"
    LogStore(shop.settings.logs_db_path).append("shop", "app", "web.1", ["after the start"])
    new = bytes(next(stream)).decode()  # type: ignore[arg-type]
    assert new.startswith("data: ") and new.endswith("app[web.1]: after the start\n\n")
    answer.close()
    assert all(log_api.TAILS.acquire(blocking=False) for _ in range(log_api.MAX_TAILS))
    for _ in range(log_api.MAX_TAILS):
        log_api.TAILS.release()


# --- the security review's holes (each test failed before its fix) ----------------------
def call(api: RealApi, method: str, path: str, token: str | None = None, **body: Any) -> Any:
    headers = {"Authorization": f"Bearer {token or api.token}"}
    return api.client.open(path, method=method, json=body or None, headers=headers)


def add_user(api: RealApi, email: str) -> str:
    made = call(api, "POST", "/users", email=email)
    assert made.status_code == 201, made.get_json()
    return str(made.get_json()["token"])


def tail_of(api: RealApi, token: str | None = None, app: str = "shop") -> Any:
    made = call(api, "POST", f"/apps/{app}/log-sessions", token, lines=0, tail=True)
    assert made.status_code == 201, made.get_json()
    return api.client.get(made.get_json()["logplex_url"].removeprefix("http://localhost"))


@pytest.mark.parametrize("how", ["rename", "destroy"])
def test_a_tail_ends_when_its_app_name_passes_to_another_app(shop: RealApi, how: str) -> None:
    answer = tail_of(shop)
    stream = iter(answer.response)
    assert next(stream) == b": tailing\n\n"
    if how == "rename":
        assert call(shop, "PATCH", "/apps/shop", name="shop-old").status_code == 200
    else:
        assert call(shop, "DELETE", "/apps/shop").status_code == 200
    assert call(shop, "POST", "/apps", name="shop").status_code == 201
    LogStore(shop.settings.logs_db_path).append("shop", "app", "web.1", ["the new shop's secret"])
    for chunk in stream:  # before the fix, the first chunk was the new shop's line
        assert b"the new shop's secret" not in bytes(chunk)
    answer.close()


def test_a_session_stops_working_once_its_creator_lost_access(
    shop: RealApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_api, "HEARTBEAT_SECONDS", 0.2)
    bob = add_user(shop, "bob@example.com")
    added = call(shop, "POST", "/teams/apps/shop/collaborators", user="bob@example.com")
    assert added.status_code in (200, 201), added.get_json()
    plain = call(shop, "POST", "/apps/shop/log-sessions", bob).get_json()["logplex_url"]
    answer = tail_of(shop, bob)
    stream = iter(answer.response)
    assert next(stream) == b": tailing\n\n"
    removed = call(shop, "DELETE", "/apps/shop/collaborators/bob@example.com")
    assert removed.status_code == 200, removed.get_json()
    assert shop.client.get(plain.removeprefix("http://localhost")).status_code == 404
    assert b": heartbeat" not in b"".join(stream)  # it ends at its first heartbeat
    answer.close()


def test_a_deleted_users_session_is_refused(shop: RealApi) -> None:
    bob = add_user(shop, "bob@example.com")
    call(shop, "POST", "/teams/apps/shop/collaborators", user="bob@example.com")
    plain = call(shop, "POST", "/apps/shop/log-sessions", bob).get_json()["logplex_url"]
    assert call(shop, "DELETE", "/users/bob@example.com").status_code in (200, 204)
    assert shop.client.get(plain.removeprefix("http://localhost")).status_code == 404


def test_a_plain_session_is_good_for_one_read_and_a_tail_for_one_stream(shop: RealApi) -> None:
    path = session(shop)
    assert shop.client.get(path).status_code == 200
    assert shop.client.get(path).status_code == 404
    tail = session(shop, tail=True)
    first = shop.client.get(tail)
    assert first.status_code == 200
    assert shop.client.get(tail).status_code == 404  # while the first streams
    first.close()
    again = shop.client.get(tail)  # once it ended, the secret opens another (until it expires)
    assert again.status_code == 200
    again.close()


def test_one_creator_takes_at_most_its_share_of_the_tails(shop: RealApi) -> None:
    held = [tail_of(shop) for _ in range(log_api.MAX_TAILS_PER_CREATOR)]
    try:
        assert all(answer.status_code == 200 for answer in held)
        refused = tail_of(shop)
        assert refused.status_code == 429, refused.get_json()
        assert "end one" in refused.get_json()["message"]
        bob = add_user(shop, "bob@example.com")
        call(shop, "POST", "/teams/apps/shop/collaborators", user="bob@example.com")
        other = tail_of(shop, bob)  # another user still gets one
        assert other.status_code == 200
        other.close()
    finally:
        for answer in held:
            answer.close()


def test_an_unexpected_error_logs_the_route_not_the_secret(
    shop: RealApi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = session(shop)

    def broken(*_: Any) -> None:
        raise RuntimeError("the state database broke")

    monkeypatch.setattr(log_sessions, "claim", broken)
    assert shop.client.get(path).status_code == 500
    logged = caplog.text
    assert "/log-sessions/<secret>" in logged and path.rsplit("/", 1)[1] not in logged
