"""Add-ons end to end: real PostgreSQL and Redis run by the platform, apps deployed by git
push into container dynos, the dyno firewall between them.

One platform and two apps shared by the tests of this module, which run in order: `shop`
owns a database and a redis, `other` starts with none. Needs root and a built stack (dynos
in containers: the firewall is theirs), and the servers installed (make setup).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from platform_harness import Platform, commit, git, running, wait_for

from paas.addons import postgresql as pg_module
from paas.addons import registry
from paas.artifacts import stacks
from paas.domain import settings as settings_module
from paas.isolation import addon_firewall

STACK = stacks.rootfs(stacks.DEFAULT_STACK) if os.geteuid() == 0 else None
SERVERS = shutil.which("redis-server") is not None and Path("/usr/lib/postgresql").exists()
pytestmark = pytest.mark.skipif(
    STACK is None or not SERVERS, reason="needs root, a built stack, PostgreSQL and Redis"
)


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running() as platform:
        yield platform


def call(platform: Platform, app: str, method: str, path: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", platform.http_port, timeout=15)
    try:
        connection.request(method, path, headers={"Host": f"{app}.paas.localhost"})
        response = connection.getresponse()
        body = response.read()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, body.decode(errors="replace")
    finally:
        connection.close()


def ok(platform: Platform, app: str, method: str, path: str) -> Any:
    status, body = call(platform, app, method, path)
    assert status == 200, f"{method} {path} on {app}: {status} {body}"
    return body


def serving_release(platform: Platform, app: str, timeout: float = 90) -> int:
    """Waits until the app's newest release alone runs (the old dynos drained and
    stopped) and answers through the router; returns it."""
    releases = json.loads(platform.paas("releases", "-a", app, "--json").stdout)
    newest = str(max(r["version"] for r in releases))

    def answered() -> bool:
        web = [
            d
            for d in platform.dyno_statuses(app)
            if d["type"] == "web" and d.get("state") != "exited"
        ]
        if not web or any(str(d["release"]) != newest for d in web):
            return False
        status, body = call(platform, app, "GET", "/")
        return status == 200 and isinstance(body, dict) and body.get("release") == newest

    wait_for(answered, timeout, f"{app} to serve v{newest}")
    return int(newest)


def config(platform: Platform, app: str) -> dict[str, str]:
    status, found = platform.request("GET", f"/apps/{app}/config-vars")
    assert status == 200 and isinstance(found, dict)
    return found


def endpoint(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def probe(platform: Platform, app: str, url: str) -> int:
    host, port = endpoint(url)
    return int(ok(platform, app, "GET", f"/probe?host={host}&port={port}")["result"])


def push(platform: Platform, app: str, repo: Path) -> None:
    result = platform.push(app, repo)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def repo(platform: Platform) -> Path:
    repo = platform.base / "addon-app"
    repo.mkdir()
    for name, text in APP_FILES.items():
        (repo / name).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "addon app")
    return repo


def addon_names(platform: Platform, app: str) -> dict[str, str]:
    """The app's add-ons by service."""
    found = json.loads(platform.paas("addons", "-a", app, "--json").stdout)
    return {a["addon_service"]["name"]: a["name"] for a in found if a["app"]["name"] == app}


def test_create_then_deploy_stores_a_row(platform: Platform, repo: Path) -> None:
    for app in ("shop", "other"):
        platform.paas("apps:create", app, "--no-remote")
    created = platform.paas("addons:create", "heroku-postgresql:hobby", "-a", "shop").stdout
    assert "Created postgresql-" in created and "as DATABASE_URL" in created
    platform.paas("addons:create", "redis", "-a", "shop")
    assert set(config(platform, "shop")) == {"DATABASE_URL", "REDIS_URL"}
    # The release phase creates the table: the firewall let it in before it started.
    push(platform, "shop", repo)
    push(platform, "other", repo)
    serving_release(platform, "shop")
    ok(platform, "shop", "POST", "/rows?body=first")
    assert ok(platform, "shop", "GET", "/rows")["rows"] == ["first"]
    assert ok(platform, "shop", "POST", "/counter")["value"] == 1


def test_the_row_and_counter_survive_redeploy_and_restart(platform: Platform, repo: Path) -> None:
    (repo / "touched.txt").write_text("a change\n")
    commit(repo, "redeploy")
    push(platform, "shop", repo)
    serving_release(platform, "shop")
    assert ok(platform, "shop", "GET", "/rows")["rows"] == ["first"]
    assert ok(platform, "shop", "POST", "/counter")["value"] == 2  # Redis kept it
    platform.paas("ps:restart", "-a", "shop")
    wait_for(
        lambda: call(platform, "shop", "GET", "/rows")[1] == {"rows": ["first"]},
        60,
        "the row after a restart",
    )


def test_the_row_survives_kill_9_of_the_dyno_and_of_the_server(platform: Platform) -> None:
    web = [s for s in platform.dyno_statuses("shop") if s["name"] == "web.1" and s.get("pid")]
    for status in web:
        os.kill(int(str(status["pid"])), signal.SIGKILL)
    wait_for(
        lambda: call(platform, "shop", "GET", "/rows")[1] == {"rows": ["first"]},
        60,
        "the row from a replacement dyno",
    )
    assert platform.server is not None
    pgrep = subprocess.run(
        ["pgrep", "-P", str(platform.server.pid)], capture_output=True, text=True, timeout=10
    )
    children = [int(p) for p in pgrep.stdout.split()]
    platform.kill_server()
    wait_for(
        lambda: not any(os.path.exists(f"/proc/{p}") for p in children),
        15,
        "the control plane's children to end with it",
    )
    assert ok(platform, "shop", "GET", "/rows")["rows"] == ["first"]  # served meanwhile
    platform.start()
    assert ok(platform, "shop", "GET", "/rows")["rows"] == ["first"]
    platform.paas("ps:restart", "-a", "shop")  # new dynos, opened by the new server
    wait_for(
        lambda: call(platform, "shop", "GET", "/rows")[1] == {"rows": ["first"]},
        60,
        "the row after the server was killed",
    )
    ok(platform, "shop", "POST", "/rows?body=second")


def test_another_app_cannot_reach_the_addons(platform: Platform) -> None:
    shop = config(platform, "shop")
    serving_release(platform, "other")
    for var in ("DATABASE_URL", "REDIS_URL"):
        assert probe(platform, "shop", shop[var]) == 0
        assert probe(platform, "other", shop[var]) != 0, f"other reached shop's {var}"


def test_with_its_own_database_another_app_still_cannot_read(platform: Platform) -> None:
    platform.paas("addons:create", "postgresql", "-a", "other")
    serving_release(platform, "other")
    own = urllib.parse.urlsplit(config(platform, "other")["DATABASE_URL"])
    shops = urllib.parse.urlsplit(config(platform, "shop")["DATABASE_URL"])
    assert probe(platform, "other", shops.geturl()) == 0  # one server: the same endpoint
    stolen = own._replace(path=shops.path).geturl()  # its own role on shop's database
    status, body = call(platform, "other", "GET", "/rows?url=" + urllib.parse.quote(stolen))
    # Refused by the server: pg_hba admits a role to its own database only (and CONNECT
    # is revoked from PUBLIC besides).
    refusals = ("no pg_hba.conf entry", "permission denied")
    assert status == 500 and any(r in body["error"] for r in refusals), body


def test_attach_gives_access_and_detach_takes_it_away(platform: Platform) -> None:
    shop = addon_names(platform, "shop")
    out = platform.paas("addons:attach", shop["redis"], "-a", "other", "--as", "SHOP_CACHE").stdout
    assert "Setting SHOP_CACHE_URL config vars and restarting other" in out
    platform.paas("addons:attach", shop["postgresql"], "-a", "other", "--as", "SHOP_DB")
    serving_release(platform, "other")
    assert ok(platform, "other", "GET", "/rows?var=SHOP_DB_URL")["rows"] == ["first", "second"]
    assert ok(platform, "other", "POST", "/counter?var=SHOP_CACHE_URL")["value"] == 3
    redis_url = config(platform, "shop")["REDIS_URL"]
    platform.paas("addons:detach", "SHOP_CACHE", "-a", "other")
    assert "SHOP_CACHE_URL" not in config(platform, "other")
    assert probe(platform, "other", redis_url) != 0  # at once, by the firewall
    serving_release(platform, "other")
    assert probe(platform, "other", redis_url) != 0
    releases = json.loads(platform.paas("releases", "-a", "other", "--json").stdout)
    assert releases[-1]["description"] == f"Detach SHOP_CACHE (@ref:{shop['redis']})"
    wait_for(lambda: openings_follow_dynos(platform), 30, "openings of gone dynos to close")


def openings_follow_dynos(platform: Platform) -> bool:
    """Every opening of the home is from the address of one of its running dynos, and
    every running dyno of an app with add-ons has one."""
    sources = {r.split(" -s ")[1].split("/")[0] for r in addon_firewall.listed(platform.home)}
    running = {
        str(d["host"])
        for d in platform.dyno_statuses("shop") + platform.dyno_statuses("other")
        if d.get("state") != "exited" and d.get("host")
    }
    return sources == running


def test_destroy_is_refused_while_attached_then_leaves_nothing(platform: Platform) -> None:
    shop = addon_names(platform, "shop")
    refused = platform.paas("apps:destroy", "-a", "shop", "--confirm", "shop", check=False)
    assert refused.returncode == 1 and "still attached to other (as SHOP_DB)" in refused.stderr
    refused = platform.paas("addons:destroy", shop["postgresql"], "--confirm", "shop", check=False)
    assert refused.returncode == 1 and "paas addons:detach SHOP_DB -a other" in refused.stderr
    platform.paas("addons:detach", "SHOP_DB", "-a", "other")
    settings = settings_module.from_env(platform.env)
    ids = {
        a["name"]: a["id"] for a in json.loads(platform.paas("addons", "--all", "--json").stdout)
    }
    platform.paas("apps:destroy", "-a", "shop", "--confirm", "shop")
    services = registry.services(settings)
    postgresql: Any = services["postgresql"]
    names = postgresql.cluster.sql(
        "SELECT datname FROM pg_database UNION ALL SELECT rolname FROM pg_roles"
    ).split()
    assert pg_module.object_name(ids[shop["postgresql"]]) not in names
    assert not postgresql.cluster.record_path(ids[shop["postgresql"]]).exists()
    redis: Any = services["redis"]
    assert not redis.instance(ids[shop["redis"]]).directory.exists()
    assert redis.instance(ids[shop["redis"]]).pid() is None
    assert ids[shop["redis"]] not in redis.addon_ids()
    rules = addon_firewall.listed(settings.home)
    assert not any(ids[name] in rule for rule in rules for name in shop.values()), rules


def test_the_platforms_stop_removes_its_chain(platform: Platform) -> None:
    chain = addon_firewall.chain_name(platform.home)
    assert (
        chain
        in subprocess.run(
            ["iptables-save", "-t", "filter"], capture_output=True, text=True, check=True
        ).stdout
    )
    platform.paas("server", "--stop")
    saved = subprocess.run(
        ["iptables-save", "-t", "filter"], capture_output=True, text=True, check=True
    ).stdout
    assert chain not in saved


# The app: a row in PostgreSQL through DATABASE_URL (pg8000, pure Python), a counter in
# Redis through REDIS_URL (its protocol by hand), a probe of what its dyno can reach.
APP_PY = r'''"""The app of tests/integration/test_addons.py."""

import os
import socket
import urllib.parse

import pg8000.native
from flask import Flask, jsonify, request

app = Flask(__name__)


def database(var: str = "DATABASE_URL", url: str | None = None) -> pg8000.native.Connection:
    parts = urllib.parse.urlsplit(url or os.environ[var])
    return pg8000.native.Connection(
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        host=parts.hostname,
        port=parts.port or 5432,
        database=parts.path.lstrip("/"),
        timeout=5,
    )


def migrate():
    """The release phase: it connects at once, before any web dyno runs."""
    if os.environ.get("DATABASE_URL"):
        database().run("CREATE TABLE IF NOT EXISTS notes (body text)")


@app.get("/")
def hello():
    return jsonify(release=os.environ.get("PAAS_RELEASE_VERSION"), dyno=os.environ.get("DYNO"))


@app.get("/env")
def env():
    return jsonify({k: v for k, v in os.environ.items() if k.endswith("_URL")})


@app.post("/rows")
def write():
    connection = database(request.args.get("var", "DATABASE_URL"))
    connection.run("CREATE TABLE IF NOT EXISTS notes (body text)")
    connection.run("INSERT INTO notes VALUES (:body)", body=request.args["body"])
    connection.close()
    return jsonify(ok=True)


@app.get("/rows")
def read():
    try:
        connection = database(request.args.get("var", "DATABASE_URL"), request.args.get("url"))
        rows = connection.run("SELECT body FROM notes ORDER BY body")
        connection.close()
    except Exception as error:  # what the test asserts on: the refusal
        return jsonify(error=f"{type(error).__name__}: {error}"), 500
    return jsonify(rows=[r[0] for r in rows])


def redis(var: str, *words: str) -> bytes:
    parts = urllib.parse.urlsplit(os.environ[var])
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as s:
        secret = urllib.parse.unquote(parts.password or "")
        for command in (["AUTH", secret], list(words)):
            s.sendall(f"*{len(command)}\r\n".encode())
            for word in command:
                s.sendall(f"${len(word.encode())}\r\n{word}\r\n".encode())
        answer = b""
        while answer.count(b"\r\n") < 2:
            answer += s.recv(4096)
    return answer


@app.post("/counter")
def count():
    answer = redis(request.args.get("var", "REDIS_URL"), "INCR", "counter")
    return jsonify(value=int(answer.split(b"\r\n")[1].lstrip(b":")))


@app.get("/probe")
def probe():
    """connect_ex of HOST:PORT from this dyno (0: connected)."""
    s = socket.socket()
    s.settimeout(2)
    try:
        result = s.connect_ex((request.args["host"], int(request.args["port"])))
    except OSError as error:
        result = error.errno or -1
    finally:
        s.close()
    return jsonify(result=result)
'''

PROCFILE = r"""web: gunicorn app:app --workers 2 --bind 0.0.0.0:$PORT
release: python -c "import app; app.migrate()"
"""

APP_FILES = {
    "app.py": APP_PY,
    "Procfile": PROCFILE,
    "requirements.txt": "flask\ngunicorn\npg8000\n",
}
