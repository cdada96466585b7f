"""Fixtures for the CLI tests: the fake paas API on a free loopback port, an isolated home.

The server is werkzeug's `make_server` in a thread, shut down when the test ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_fake_api import TOKEN, FakeApi, QuietHandler, build_app
from werkzeug.serving import make_server


@pytest.fixture
def api() -> Iterator[FakeApi]:
    """A fake API served on a free loopback port for the duration of one test."""
    fake = FakeApi(url="")
    server = make_server("127.0.0.1", 0, build_app(fake), request_handler=QuietHandler)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME and working directory (outside any git repo), no PAAS_* settings."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "PAAS_API_URL", "PAAS_API_TOKEN", "PAAS_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(work)
    return home


@pytest.fixture
def logged_in(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    """The fake API with one app, `demo`, and the environment pointing at it."""
    monkeypatch.setenv("PAAS_API_URL", api.url)
    monkeypatch.setenv("PAAS_API_TOKEN", TOKEN)
    api.add_app("demo")
    return api
