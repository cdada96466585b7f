"""Hostile input to the API: every refusal is a 4xx JSON error that changes nothing, and no
input can make the router stop routing the other apps.

Most tests drive the real Flask application (the API's code, on a real store in a
temporary PAAS_HOME) through its WSGI interface; the last one drives a running platform
through its HTTP API and a real `git push`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from platform_harness import Platform, wait_for

from paas.api import create_app
from paas.domain.settings import Settings
from paas.state.store import Store

TOKEN = "hardening-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Flask, FlaskClient]]:
    settings = Settings(home=tmp_path, domain="paas.localhost", containers=False)
    flask_app = create_app(settings)
    Store(settings.db_path).add_token(TOKEN, "admin")
    yield flask_app, flask_app.test_client()


def call(client: FlaskClient, method: str, path: str, body: object = None) -> tuple[int, object]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
    response = client.open(
        path,
        method=method,
        data=data,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.mimetype == "application/json", response.data[:200]
    return response.status_code, response.get_json()


def assert_refused(status: int, body: object, *words: str) -> None:
    assert 400 <= status < 500, (status, body)
    assert isinstance(body, dict) and set(body) == {"id", "message"}, body
    message = str(body["message"])
    assert "\n" not in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("name", ["evil\n", "evil\r\n", "ab-", "a--b", "Évil", "x" * 31, 7])
def test_a_bad_app_name_is_refused_and_no_app_is_created(
    api: tuple[Flask, FlaskClient], name: object
) -> None:
    _, client = api
    assert_refused(*call(client, "POST", "/apps", {"name": name}), "invalid app name")
    assert call(client, "GET", "/apps") == (200, [])


def test_a_config_key_with_a_newline_or_a_value_with_nul_is_refused_whole(
    api: tuple[Flask, FlaskClient],
) -> None:
    _, client = api
    call(client, "POST", "/apps", {"name": "demo"})
    path = "/apps/demo/config-vars"
    assert call(client, "PATCH", path, {"GOOD": "1"})[0] == 200
    assert_refused(*call(client, "PATCH", path, {"OK": "2", "FOO\n": "x"}), "FOO")
    assert_refused(*call(client, "PATCH", path, {"OK": "2", "BAD": "a\0b"}), "NUL")
    assert call(client, "GET", path) == (200, {"GOOD": "1"})


@pytest.mark.parametrize(
    ("hostname", "why"),
    [
        ("a.b.-c", "invalid hostname"),
        ("www.example.com\n", "invalid hostname"),
        ("exa mple.com", "invalid hostname"),
        ("localhost", "full DNS name"),
        ("paas.localhost", "under paas.localhost"),
        ("other.paas.localhost", "under paas.localhost"),  # another app's own hostname
        ("OTHER.Paas.Localhost", "under paas.localhost"),
        ("deep.other.paas.localhost", "under paas.localhost"),
    ],
)
def test_a_bad_or_taken_custom_domain_is_refused(
    api: tuple[Flask, FlaskClient], hostname: str, why: str
) -> None:
    _, client = api
    call(client, "POST", "/apps", {"name": "demo"})
    call(client, "POST", "/apps", {"name": "other"})
    assert_refused(*call(client, "POST", "/apps/demo/domains", {"hostname": hostname}), why)
    status, listed = call(client, "GET", "/apps/demo/domains")
    assert status == 200 and isinstance(listed, list)
    assert [d["kind"] for d in listed] == ["heroku"]  # its own only


def test_no_app_is_created_whose_hostname_is_a_custom_domain(
    api: tuple[Flask, FlaskClient],
) -> None:
    flask_app, client = api
    call(client, "POST", "/apps", {"name": "demo"})
    # A custom domain from before the rule (or from another PAAS_DOMAIN) that is now
    # some app's default hostname: the new app must not take it.
    settings = flask_app.extensions["paas"].settings
    with sqlite3.connect(settings.db_path) as db:
        (app_id,) = db.execute("SELECT id FROM apps WHERE name = 'demo'").fetchone()
        db.execute(
            "INSERT INTO domains (app_id, hostname) VALUES (?, 'shop.paas.localhost')", (app_id,)
        )
    status, body = call(client, "POST", "/apps", {"name": "shop"})
    assert status == 409 and "shop.paas.localhost" in str(body)
    listed = call(client, "GET", "/apps")[1]
    assert isinstance(listed, list) and [a["name"] for a in listed] == ["demo"]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"{not json",
        b"\xff\xfe{}",
        b'"just a string"',
        b"[]",
        b'{"name": "a", "name": ' + b"1" * 5000 + b"}",
    ],
)
def test_odd_bodies_are_a_4xx_json_error_not_an_html_500(
    api: tuple[Flask, FlaskClient], body: bytes
) -> None:
    _, client = api
    assert_refused(*call(client, "POST", "/apps", body))
    assert call(client, "GET", "/apps") == (200, [])


def test_a_body_over_the_cap_is_refused(api: tuple[Flask, FlaskClient]) -> None:
    _, client = api
    status, body = call(client, "POST", "/apps", b'{"name": "' + b"a" * 2_000_000 + b'"}')
    assert status == 413 and isinstance(body, dict) and body["id"] == "request_too_large"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/apps/demo/releases", {"release": "v99999999999999999999999"}),
        ("POST", "/apps/demo/releases", {"release": 2**70}),
        ("POST", "/apps/demo/releases", {"release": "v"}),
        ("GET", "/apps/demo/releases/v99999999999999999999999/image", None),
        ("GET", "/apps/demo/releases/v\u0663/image", None),
        ("GET", "/apps/demo/log-lines?after=99999999999999999999999", None),
    ],
)
def test_odd_versions_and_cursors_are_a_4xx_json_error(
    api: tuple[Flask, FlaskClient], method: str, path: str, body: object
) -> None:
    _, client = api
    call(client, "POST", "/apps", {"name": "demo"})
    assert_refused(*call(client, method, path, body))


def test_an_unexpected_failure_is_a_json_500_with_the_traceback_in_the_log(
    api: tuple[Flask, FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    flask_app, client = api

    def broken() -> str:
        raise RuntimeError("a bug in a handler")

    flask_app.add_url_rule("/broken", view_func=broken)
    status, body = call(client, "GET", "/broken")
    assert status == 500
    assert body == {
        "id": "internal_server_error",
        "message": "the API failed unexpectedly; the platform's log has the details",
    }
    assert "a bug in a handler" in caplog.text and "Traceback" in caplog.text


def test_framework_errors_are_json_too(api: tuple[Flask, FlaskClient]) -> None:
    _, client = api
    assert call(client, "GET", "/no/such/endpoint")[0] == 404
    assert call(client, "PUT", "/apps")[0] == 405


def test_after_bad_input_the_next_deploy_of_another_app_is_routed(platform: Platform) -> None:
    """On the old code, "evil\\n" was accepted as an app and the router then refused every
    later route table, so a new app's deploy never got routed."""
    for method, path, body in [
        ("POST", "/apps", {"name": "evil\n"}),
        ("POST", "/apps", {"name": "victim"}),
        ("PATCH", "/apps/victim/config-vars", {"FOO\n": "x"}),
        ("POST", "/apps/victim/domains", {"hostname": "a.b.-c"}),
        ("POST", "/apps/victim/domains", {"hostname": "fresh.paas.localhost"}),
    ]:
        status, answer = platform.request_json(method, path, body)
        if path == "/apps" and body == {"name": "victim"}:
            assert status == 201
        else:
            assert_refused(status, answer)
    platform.paas("apps:create", "fresh", "--no-remote")
    pushed = platform.push("fresh", platform.new_repo("fresh-repo"))
    assert pushed.returncode == 0, pushed.stderr
    wait_for(lambda: platform.get("fresh")[0] == 200, 30, "the new app to be routed")
    applied = json.loads((platform.home / "router" / "applied.json").read_text())
    assert applied["rejected"] == []
