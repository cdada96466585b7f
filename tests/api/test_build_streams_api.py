"""A build's output_stream_url through the real API: a secret of the caller's own, stored
only as a hash, short-lived, refused once its holder may no longer view the app, and
bounded in how many follow live builds at once."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from real_api import RealApi
from test_users_api import add_user, call

from paas.api import releases as releases_api
from paas.domain.access import Principal
from paas.domain.models import Build
from paas.state import build_output, build_streams
from paas.state.store import Store, token_hash

OUTPUT = "-----> compiled\n"


def shared_app(api: RealApi) -> tuple[str, str, Build]:
    """ada's app `ada-app` with bob a view collaborator, and one build of it."""
    ada, bob = add_user(api, "ada@example.com"), add_user(api, "bob@example.com")
    assert call(api, "POST", "/apps", ada, name="ada-app").status_code == 201
    added = call(
        api, "POST", "/teams/apps/ada-app/collaborators", ada,
        user="bob@example.com", permissions=["view"],
    )  # fmt: skip
    assert added.status_code == 201
    store = Store(api.settings.db_path)
    build = store.start_build(store.app("ada-app"), "abcdef12", Principal("u", "ada@example.com"))
    return ada, bob, build


def finish(api: RealApi, build: Build) -> None:
    Store(api.settings.db_path).finish_build(build, "succeeded", None, OUTPUT)


def stream_url(api: RealApi, token: str) -> str:
    builds = call(api, "GET", "/apps/ada-app/builds", token).get_json()
    return urlsplit(str(builds[-1]["output_stream_url"])).path


def read(client: FlaskClient, path: str) -> tuple[int, str]:
    response = client.get(path)  # no token: Heroku's CLI sends none
    return response.status_code, response.get_data(as_text=True)


def test_only_a_hash_of_the_secret_is_stored(real_api: RealApi) -> None:
    ada, _, _ = shared_app(real_api)
    secret = stream_url(real_api, ada).rsplit("/", 1)[1]
    with sqlite3.connect(real_api.settings.db_path) as db:
        dump = "\n".join(db.iterdump())
    assert secret not in dump
    assert token_hash(secret) in dump


def test_each_caller_gets_their_own_url(real_api: RealApi) -> None:
    ada, bob, build = shared_app(real_api)
    finish(real_api, build)
    mine, theirs = stream_url(real_api, ada), stream_url(real_api, bob)
    assert mine != theirs
    assert read(real_api.client, mine) == (200, OUTPUT)
    assert read(real_api.client, theirs) == (200, OUTPUT)
    shown = call(real_api, "GET", f"/apps/ada-app/builds/{build.id}", bob).get_json()
    assert read(real_api.client, urlsplit(shown["output_stream_url"]).path) == (200, OUTPUT)


def test_a_removed_collaborators_url_is_refused(real_api: RealApi) -> None:
    ada, bob, build = shared_app(real_api)
    finish(real_api, build)
    url = stream_url(real_api, bob)
    assert read(real_api.client, url)[0] == 200
    removed = call(real_api, "DELETE", "/apps/ada-app/collaborators/bob@example.com", ada)
    assert removed.status_code == 200
    status, body = read(real_api.client, url)
    assert status == 404 and "expired" in body and OUTPUT not in body


def test_a_deleted_users_url_is_refused(real_api: RealApi) -> None:
    _, bob, build = shared_app(real_api)
    finish(real_api, build)
    url = stream_url(real_api, bob)
    assert call(real_api, "DELETE", "/users/bob@example.com").status_code == 200
    assert read(real_api.client, url)[0] == 404


def test_an_expired_url_is_refused(real_api: RealApi, monkeypatch: pytest.MonkeyPatch) -> None:
    ada, _, build = shared_app(real_api)
    finish(real_api, build)
    monkeypatch.setattr(build_streams, "TTL_SECONDS", -1.0)  # expired as soon as made
    assert read(real_api.client, stream_url(real_api, ada))[0] == 404


def live(api: RealApi, build: Build, text: str) -> None:
    """The hook's live output file of a build still running."""
    found = build_output.path(api.settings.run_dir, build.id)
    found.parent.mkdir(parents=True, exist_ok=True)
    with found.open("a") as out:
        out.write(text)


def test_live_streams_are_bounded_per_url_and_per_process(real_api: RealApi) -> None:
    ada, _, build = shared_app(real_api)
    live(real_api, build, OUTPUT)
    client = real_api.client
    url = stream_url(real_api, ada)
    held = [client.get(url, buffered=False) for _ in range(releases_api.FOLLOWERS_PER_SECRET)]
    try:
        assert [r.status_code for r in held] == [200] * releases_api.FOLLOWERS_PER_SECRET
        third = client.get(url)
        assert third.status_code == 429 and "followed" in third.get_json()["message"]
        while len(held) < releases_api.MAX_STREAMS:
            held.append(client.get(stream_url(real_api, ada), buffered=False))
        assert held[-1].status_code == 200
        past = client.get(stream_url(real_api, ada))
        assert past.status_code == 429 and "live builds" in past.get_json()["message"]
    finally:
        for response in held:
            response.close()
    assert client.get(url, buffered=False).status_code == 200  # closed: the slots came back


def test_a_live_stream_stops_once_its_holder_lost_access(
    real_api: RealApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(releases_api._Recheck, "RECHECK_SECONDS", 0.0)
    ada, bob, build = shared_app(real_api)
    live(real_api, build, OUTPUT)
    response = real_api.client.get(stream_url(real_api, bob), buffered=False)
    try:
        chunks = response.iter_encoded()
        assert next(chunks) == OUTPUT.encode()
        call(real_api, "DELETE", "/apps/ada-app/collaborators/bob@example.com", ada)
        live(real_api, build, "-----> the secret part\n")
        rest = b"".join(chunks)  # ends: no longer running for this reader
    finally:
        response.close()
    assert b"secret part" not in rest


def test_old_plaintext_secrets_go_when_the_store_opens(real_api: RealApi) -> None:
    _, _, build = shared_app(real_api)
    with sqlite3.connect(real_api.settings.db_path) as db:  # what a store from before kept
        db.execute("UPDATE builds SET stream_secret = 'old-plaintext' WHERE id = ?", (build.id,))
    Store(real_api.settings.db_path)
    with sqlite3.connect(real_api.settings.db_path) as db:
        kept = db.execute("SELECT stream_secret FROM builds WHERE id = ?", (build.id,)).fetchone()
    assert kept == (None,)
    assert read(real_api.client, "/build-output/old-plaintext")[0] == 404


def test_a_listing_grants_urls_for_its_page_only(real_api: RealApi) -> None:
    """A grant is a write: a page of 1 build of 4 makes 1, not 4 (a listing's grants
    competed with pushes for SQLite's write lock)."""
    ada, _, _ = shared_app(real_api)
    store = Store(real_api.settings.db_path)
    for commit in ("bcdef123", "cdef1234", "def12345"):
        store.start_build(store.app("ada-app"), commit, Principal("u", "ada@example.com"))
    page = real_api.client.get(
        "/apps/ada-app/builds",
        headers={"Authorization": f"Bearer {ada}", "Range": "id ..; max=1"},
    )
    assert page.status_code == 206 and len(page.get_json()) == 1
    with sqlite3.connect(real_api.settings.db_path) as db:
        [(grants,)] = db.execute("SELECT COUNT(*) FROM build_stream_grants").fetchall()
    assert grants == 1
