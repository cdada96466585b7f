"""The rendezvous Heroku's CLI attaches to (paas.api.rendezvous), on the real API: an
attached dyno's attach_url names the listener and a secret good for one connection, over
TLS with the platform's own certificate."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from real_api import RealApi

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
