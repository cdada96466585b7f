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
