"""A fake paas API for the CLI tests, and the helper that runs the CLI in-process.

The fake is a small Flask app that keeps its state in plain dicts and records every request,
so a test can assert what was (or was not) sent; conftest serves it on a loopback port.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flask
from click.testing import CliRunner, Result
from werkzeug.serving import WSGIRequestHandler

from paas.cli import commands as cli

TOKEN = "test-token-123"
UNAUTHORIZED = "Invalid credentials provided."


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclasses.dataclass
class FakeApi:
    url: str
    requests: list[Recorded] = dataclasses.field(default_factory=list)
    apps: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    config: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    formation: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    dynos: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    releases: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    domains: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    log_lines: list[str] = dataclasses.field(default_factory=list)

    def add_app(self, name: str) -> dict[str, Any]:
        app = {
            "id": f"id-{name}",
            "name": name,
            "git_url": f"{self.url}/{name}.git",
            "web_url": f"http://{name}.paas.localhost:8080/",
            "created_at": "2026-11-28T15:00:00+00:00",
            "released_at": None,
            "stack": "paas-1",
            "current_release": None,
        }
        self.apps[name] = app
        self.config[name] = {}
        return app

    def sent(self, method: str | None = None) -> list[Recorded]:
        """The requests received, optionally only those of one method."""
        return [r for r in self.requests if method is None or r.method == method]


def _error(status: int, error_id: str, message: str) -> flask.Response:
    response = flask.jsonify({"id": error_id, "message": message})
    response.status_code = status
    return response


def build_app(fake: FakeApi) -> flask.Flask:
    app = flask.Flask("fake_paas_api")

    @app.before_request
    def record_and_authenticate() -> flask.Response | None:
        req = flask.request
        body = req.get_json(silent=True) if req.data else None
        fake.requests.append(Recorded(req.method, req.path, dict(req.args), body))
        if req.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(401, "unauthorized", UNAUTHORIZED)
        return None

    def find(name: str) -> dict[str, Any]:
        if name not in fake.apps:
            flask.abort(_error(404, "not_found", f"Couldn't find that app: {name}."))
        return fake.apps[name]

    @app.get("/account")
    def account() -> Any:
        return {"name": "admin"}

    @app.get("/apps")
    def list_apps() -> Any:
        return list(fake.apps.values())

    @app.post("/apps")
    def create_app() -> Any:
        name = (flask.request.get_json() or {}).get("name") or "misty-river-42"
        if name in fake.apps:
            return _error(409, "conflict", f"Name {name} is already taken")
        return fake.add_app(name), 201

    @app.get("/apps/<name>")
    def get_app(name: str) -> Any:
        return find(name)

    @app.delete("/apps/<name>")
    def destroy_app(name: str) -> Any:
        find(name)
        return fake.apps.pop(name)

    @app.get("/apps/<name>/config-vars")
    def get_config(name: str) -> Any:
        find(name)
        return fake.config[name]

    @app.patch("/apps/<name>/config-vars")
    def patch_config(name: str) -> Any:
        find(name)
        for key, value in flask.request.get_json().items():
            if value is None:
                fake.config[name].pop(key, None)
            else:
                fake.config[name][key] = value
        return fake.config[name]

    @app.get("/apps/<name>/formation")
    def get_formation(name: str) -> Any:
        find(name)
        return fake.formation

    @app.patch("/apps/<name>/formation")
    def patch_formation(name: str) -> Any:
        find(name)
        for update in flask.request.get_json()["updates"]:
            for process in fake.formation:
                if process["type"] == update["type"]:
                    process["quantity"] = update["quantity"]
        return fake.formation

    @app.get("/apps/<name>/dynos")
    def get_dynos(name: str) -> Any:
        find(name)
        return fake.dynos

    @app.delete("/apps/<name>/dynos")
    @app.delete("/apps/<name>/dynos/<target>")
    def restart(name: str, target: str | None = None) -> Any:
        find(name)
        return {"message": f"Restarting {target or 'all dynos'} on {name}"}, 202

    @app.get("/apps/<name>/releases")
    def get_releases(name: str) -> Any:
        find(name)
        return fake.releases

    @app.post("/apps/<name>/releases")
    def post_release(name: str) -> Any:
        find(name)
        wanted = flask.request.get_json().get("release", len(fake.releases) - 1)
        release = {
            "id": "r-new",
            "version": len(fake.releases) + 1,
            "description": f"Rollback to v{wanted}",
            # As the real API answers: the rollback is deploying, and current as such.
            "status": "deploying",
            "status_detail": None,
            "current": True,
            "created_at": "2026-11-28T15:20:00+00:00",
            "artifact": None,
            "process_types": {},
        }
        return release, 201

    @app.get("/apps/<name>/domains")
    def get_domains(name: str) -> Any:
        find(name)
        return fake.domains

    @app.post("/apps/<name>/domains")
    def add_domain(name: str) -> Any:
        find(name)
        domain = {"hostname": flask.request.get_json()["hostname"]}
        fake.domains.append(domain)
        return domain, 201

    @app.delete("/apps/<name>/domains/<hostname>")
    def remove_domain(name: str, hostname: str) -> Any:
        find(name)
        fake.domains.remove({"hostname": hostname})
        return {"hostname": hostname}

    @app.get("/apps/<name>/log-lines")
    def get_log_lines(name: str) -> Any:
        find(name)
        args = flask.request.args
        if "after" in args:
            start = int(args["after"])
        else:
            start = max(0, len(fake.log_lines) - int(args.get("num", "100")))
        return {"lines": fake.log_lines[start:], "cursor": len(fake.log_lines)}

    return app


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # keep werkzeug's access log out of the CLI output the tests read


def run(*args: str, input: str | None = None, obj: cli.Session | None = None) -> Result:
    """Invoke the CLI in-process; stdout and stderr stay separate on the result."""
    return CliRunner().invoke(cli.cli, list(args), input=input, obj=obj, catch_exceptions=False)
