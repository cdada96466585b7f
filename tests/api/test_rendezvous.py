"""The rendezvous Heroku's CLI attaches to (paas.api.rendezvous), on the real API: an
attached dyno's attach_url names the listener and a secret good for one connection, over
TLS with the platform's own certificate."""

from __future__ import annotations

import socket
import ssl
import time
from urllib.parse import urlsplit

import pytest
from real_api import RealApi

from paas.api import rendezvous, run
from paas.state import one_offs
from paas.state.store import Store


def attach_url(api: RealApi) -> str:
    auth = {"Authorization": f"Bearer {api.token}"}
    api.client.post("/apps", json={"name": "demo"}, headers=auth)
    api.release("demo", {"web": "serve"}, "succeeded")
    made = api.client.post(
        "/apps/demo/dynos", json={"command": "true", "attach": True}, headers=auth
    )
    assert made.status_code == 201
    url = made.get_json()["attach_url"]
    assert isinstance(url, str)
    return url


def session(api: RealApi, url: str, secret: str) -> bytes:
    """What the listener says to a client that sends `secret`, verifying the certificate
    as Heroku's CLI does once it trusts it."""
    tls = ssl.create_default_context(cafile=str(api.settings.home / "rendezvous" / "cert.pem"))
    parts = urlsplit(url)
    assert parts.port is not None
    raw = socket.create_connection(("127.0.0.1", parts.port), timeout=10)
    with raw, tls.wrap_socket(raw, server_hostname="127.0.0.1") as client:
        client.sendall(secret.encode() + b"\r\n")
        said = b""
        while chunk := client.recv(4096):
            said += chunk
    return said


def test_the_attach_url_is_a_rendezvous_url_with_a_secret(real_api: RealApi) -> None:
    parts = urlsplit(attach_url(real_api))
    assert parts.scheme == "rendezvous" and parts.hostname == "localhost"
    assert len(parts.path.lstrip("/")) >= 40


def test_a_secret_is_good_for_one_connection(real_api: RealApi) -> None:
    url = attach_url(real_api)
    store = Store(real_api.settings.db_path)
    request = one_offs.by_name(store, store.app("demo"), "run.1")
    assert request is not None and one_offs.cancel(store, request.id, "cancelled by the test")
    first = session(real_api, url, urlsplit(url).path.lstrip("/"))
    assert first.startswith(b"rendezvous\r\n") and b"run.1 is not running" in first
    again = session(real_api, url, urlsplit(url).path.lstrip("/"))
    assert again == b"rendezvous\r\npaas: no such session, or it expired: run the command again\r\n"
    assert b"no such session" in session(real_api, url, "guessed")


def test_a_trickled_secret_line_is_cut_at_one_deadline(
    real_api: RealApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rendezvous, "HANDSHAKE_SECONDS", 1.0)
    url = attach_url(real_api)
    tls = ssl.create_default_context(cafile=str(real_api.settings.home / "rendezvous" / "cert.pem"))
    port = urlsplit(url).port
    assert port is not None
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with raw, tls.wrap_socket(raw, server_hostname="127.0.0.1") as client:
        client.settimeout(0.3)  # a byte every 0.3 s: each well within the 1 s
        started = time.monotonic()
        closed = False
        while not closed and time.monotonic() - started < 4.0:
            try:
                client.sendall(b"x")
                closed = client.recv(4096) == b""  # the listener closed it
            except TimeoutError:
                continue  # nothing said: still waiting for the line
            except OSError:
                closed = True
        assert closed and time.monotonic() - started < 2.0


def test_a_full_process_does_not_use_up_the_secret(real_api: RealApi) -> None:
    url = attach_url(real_api)
    store = Store(real_api.settings.db_path)
    request = one_offs.by_name(store, store.app("demo"), "run.1")
    assert request is not None and one_offs.cancel(store, request.id, "cancelled by the test")
    secret = urlsplit(url).path.lstrip("/")
    held = [run.SESSIONS.acquire(blocking=False) for _ in range(run.MAX_SESSIONS)]
    try:
        assert all(held)
        assert b"sessions already" in session(real_api, url, secret)
    finally:
        for _ in held:
            run.SESSIONS.release()
    assert b"run.1 is not running" in session(real_api, url, secret)  # still good once


def test_a_half_made_certificate_directory_is_made_whole(real_api: RealApi) -> None:
    made = real_api.settings.home / "rendezvous"
    made.mkdir()
    (made / "cert.pem").write_text("left by a crash\n")
    assert attach_url(real_api).startswith("rendezvous://")
    ssl.create_default_context().load_verify_locations(cafile=str(made / "cert.pem"))
