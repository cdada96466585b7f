"""A fake paas API for the CLI tests, and the helper that runs the CLI in-process.

The fake is a small Flask app that keeps its state in plain dicts and records every request,
so a test can assert what was (or was not) sent; conftest serves it on a loopback port. It
answers the shared contract (tests/contract/api_cases.py) as the real API does:
test_fake_api_contract.py runs those cases against it, tests/api against the real one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import flask
from click.testing import CliRunner, Result
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler

from paas.cli import commands as cli
from paas.cli import run as _run  # noqa: F401  # registers run, run:detached, ps:stop
from paas.domain import buildpack_source, formation, sizes, validation
from paas.domain.errors import (
    BuildFailed,
    Conflict,
    InvalidParams,
    NotFound,
    PaasError,
    Unauthorized,
)
from paas.state import log_sessions

TOKEN = "test-token-123"
UNAUTHORIZED = "invalid credentials: the API token was not accepted"
DOMAIN = "paas.localhost"
STACKS = ("debian-12", "debian-13")  # the real API's stacks; the default last


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
    buildpacks: list[str] = dataclasses.field(default_factory=list)
    log_lines: list[str] = dataclasses.field(default_factory=list)
    one_offs: list[str] = dataclasses.field(default_factory=list)  # commands, run.1 first

    def add_app(self, name: str, stack: str = STACKS[-1]) -> dict[str, Any]:
        app = {
            "id": f"id-{name}",
            "name": name,
            "git_url": f"{self.url}/{name}.git",
            "web_url": f"http://{name}.{DOMAIN}:8080/",
            "created_at": "2026-11-28T15:00:00+00:00",
            "released_at": None,
            "stack": stack,
            "current_release": None,
            "routing_error": None,
        }
        self.apps[name] = app
        self.config[name] = {}
        return app

    def add_release(self, process_types: dict[str, str], status: str) -> dict[str, Any]:
        """The next release, as a push (and the agent, for `status`) would leave it; new
        process types join the formation, web at 1."""
        version = len(self.releases) + 1
        release = {
            "id": f"r{version}",
            "version": version,
            "description": "Deploy abcdef12",
            "status": status,
            "status_detail": None,
            "current": False,
            "created_at": "2026-11-28T15:10:00+00:00",
            "artifact": f"sha256:{version:064x}",
            "process_types": dict(process_types),
        }
        self.releases.append(release)
        self._mark_current()
        known = {entry["type"] for entry in self.formation}
        for kind in sorted(set(process_types) - known):
            entry = {"type": kind, "quantity": 1 if kind == "web" else 0, "size": "Standard-1X"}
            stamps = {"created_at": "2026-11-28T15:10:00Z", "updated_at": "2026-11-28T15:10:00Z"}
            app = {"id": "id-demo", "name": "demo"}
            self.formation.append(
                {"id": f"id-{kind}", **entry, "command": process_types[kind], "app": app, **stamps}
            )
        self.formation.sort(key=lambda entry: str(entry["type"]))
        return release

    def rollback(self, app: str, version: int | None) -> dict[str, Any]:
        """A new release of vN (default: the last that succeeded before the current one)."""
        current = self._current()
        if current is None:
            raise NotFound(f"{app} has no running release yet: push code first")
        if version is None:
            earlier = [
                r["version"]
                for r in self.releases
                if r["version"] < current["version"] and r["status"] == "succeeded"
            ]
            if not earlier:
                raise NotFound(f"{app} has no earlier release that succeeded to roll back to")
            version = earlier[-1]
        target = next((r for r in self.releases if r["version"] == version), None)
        if target is None:
            raise NotFound(f"release v{version} of {app} not found: `paas releases` lists them")
        release = self.add_release(target["process_types"], "deploying")
        release["description"] = f"Rollback to v{version}"
        return release

    def _current(self) -> dict[str, Any] | None:
        """The newest release deploying or succeeded (what dynos run)."""
        runnable = [r for r in self.releases if r.get("status") in ("deploying", "succeeded")]
        return runnable[-1] if runnable else None

    def _mark_current(self) -> None:
        current = self._current()
        for release in self.releases:
            release["current"] = release is current
        for app in self.apps.values():  # one list of releases, for whichever app has them
            app["current_release"] = None if current is None else current["version"]
            app["released_at"] = None if current is None else current["created_at"]

    def sent(self, method: str | None = None) -> list[Recorded]:
        """The requests received, optionally only those of one method."""
        return [r for r in self.requests if method is None or r.method == method]


def build_app(fake: FakeApi) -> flask.Flask:
    """The fake's routes. Each answers as the real API does for the cases of
    tests/contract/api_cases.py (the same validators, errors and shapes), which
    test_fake_api_contract.py checks; state is kept in the FakeApi's dicts and lists."""
    app = flask.Flask("fake_paas_api")

    @app.before_request
    def record_and_authenticate() -> None:
        req = flask.request
        body = req.get_json(silent=True) if req.data else None
        fake.requests.append(Recorded(req.method, req.path, dict(req.args), body))
        header = req.headers.get("Authorization")
        if header is None:
            raise Unauthorized("authentication required: run `paas login` or set PAAS_API_TOKEN")
        if header != f"Bearer {TOKEN}":
            raise Unauthorized(UNAUTHORIZED)

    @app.errorhandler(PaasError)
    def paas_error(error: PaasError) -> tuple[flask.Response, int]:
        return flask.jsonify(id=error.id, message=error.message), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[flask.Response, int]:
        if error.code == 405:
            return flask.jsonify(id="bad_request", message="method not allowed"), 405
        return flask.jsonify(id="not_found", message="no such API endpoint"), 404

    def find(name: str) -> dict[str, Any]:
        if name not in fake.apps:
            raise NotFound(f"app {name!r} not found: `paas apps` lists the apps")
        return fake.apps[name]

    def body() -> dict[str, Any]:
        if not flask.request.data.strip():
            return {}
        try:
            parsed = json.loads(flask.request.data)
        except ValueError:
            raise InvalidParams("the request body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise InvalidParams("the request body must be a JSON object")
        return parsed

    def stack(given: object) -> str:
        if not isinstance(given, str) or given not in STACKS:
            raise InvalidParams(f"unknown stack {given!r}: choose one of {', '.join(STACKS)}")
        return given

    @app.get("/account")
    def account() -> Any:
        return {"name": "admin"}

    @app.get("/apps")
    def list_apps() -> Any:
        return list(fake.apps.values())

    @app.post("/apps")
    def create_app() -> Any:
        given = body()
        name = validation.app_name(given.get("name") or "misty-river-4242")
        chosen = stack(given.get("stack") or STACKS[-1])
        if name in fake.apps:
            raise Conflict(f"app {name!r} already exists: choose another name")
        return fake.add_app(name, chosen), 201

    @app.get("/apps/<name>")
    def get_app(name: str) -> Any:
        return find(name)

    @app.patch("/apps/<name>")
    def set_stack(name: str) -> Any:
        chosen = find(name)["stack"] = stack(body().get("stack"))
        return {**find(name), "stack_build": {"name": chosen, "state": "built", "reason": ""}}

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
        changes = validation.config_changes(body())  # all checked before any is applied
        for key, value in changes.items():
            if value is None:
                fake.config[name].pop(key, None)
            else:
                fake.config[name][key] = value
        return fake.config[name]

    @app.get("/apps/<name>/formation")
    def get_formation(name: str) -> Any:
        find(name)
        return fake.formation

    @app.get("/apps/<name>/formation/<kind>")
    def get_formation_type(name: str, kind: str) -> Any:
        find(name)
        found = [entry for entry in fake.formation if entry["type"] == kind]
        if not found:
            raise NotFound(f"no process type {kind!r} in {name}'s formation")
        return found[0]

    @app.patch("/apps/<name>/formation")
    def patch_formation(name: str) -> Any:
        find(name)
        scale(name, body().get("updates"))
        return fake.formation

    @app.patch("/apps/<name>/formation/<kind>")
    def patch_formation_type(name: str, kind: str) -> Any:
        find(name)
        scale(name, [{**body(), "type": kind}])
        return get_formation_type(name, kind)

    def scale(name: str, updates: object) -> None:
        """As paas.release.releases.scale: the whole batch checked, then applied."""
        changes = formation.changes(updates)
        if not fake.formation:
            raise InvalidParams(f"{name} has no release yet: push code before scaling")
        by_type = {process["type"]: process for process in fake.formation}
        for kind in changes:
            if kind not in by_type:
                raise InvalidParams(f"no process type {kind!r} in the app's Procfile")
        for kind, change in changes.items():
            if change.quantity is not None:
                by_type[kind]["quantity"] = change.quantity.applied_to(by_type[kind]["quantity"])
            if change.size is not None:
                by_type[kind]["size"] = sizes.display(change.size)

    @app.get("/apps/<name>/dynos")
    def get_dynos(name: str) -> Any:
        find(name)
        return fake.dynos

    @app.get("/apps/<name>/dynos/<dyno>")
    def get_dyno(name: str, dyno: str) -> Any:
        find(name)
        for found in fake.dynos:
            if found.get("name") == dyno:
                return found
        kind, _, number = dyno.partition(".")
        if kind == "run" and number.isdigit() and 1 <= int(number) <= len(fake.one_offs):
            return one_off(name, int(number), None, {"attach": False})
        raise NotFound(f"no dyno {dyno} in {name}")

    @app.delete("/apps/<name>/dynos")
    @app.delete("/apps/<name>/dynos/<target>")
    @app.delete("/apps/<name>/formations/<target>")
    def restart(name: str, target: str | None = None) -> Any:
        find(name)
        check_target(name, target)
        return {"message": f"Restarting {target or 'all dynos'} of {name}"}, 202

    def check_target(name: str, target: str | None) -> None:
        kinds = {process["type"] for process in fake.formation}
        if target is not None and target.partition(".")[0] not in kinds:
            raise InvalidParams(f"no dyno or process type {target!r} in {name}")

    @app.post("/apps/<name>/dynos")
    def create_dyno(name: str) -> Any:
        """paas.api.run's create, kept to what the contract cases check."""
        find(name)
        given = body()
        command = given.get("command")
        if not isinstance(command, str) or not command.strip():
            raise InvalidParams("command must be a non-empty string")
        if fake._current() is None:
            raise InvalidParams(f"{name} has no release to run yet: deploy it first")
        size = given.get("size")
        if size is not None:
            size = sizes.canonical(size)
        env = given.get("env") or {}
        valid = (str, int, type(None))
        if not isinstance(env, dict) or not all(isinstance(v, valid) for v in env.values()):
            raise InvalidParams("env must be an object of strings")
        fake.one_offs.append(command)
        return one_off(name, len(fake.one_offs), size, given), 201

    def one_off(name: str, number: int, size: str | None, given: dict[str, Any]) -> Any:
        dyno = f"run.{number}"
        attach = f"/apps/{name}/dynos/{dyno}/attach" if given.get("attach") else None
        return {
            "id": f"id-{dyno}",
            "name": dyno,
            "type": "run",
            "state": "starting",
            "command": fake.one_offs[number - 1],
            "size": sizes.display(size or sizes.DEFAULT_SIZE),
            "release": None,
            "app": {"id": f"id-{name}", "name": name},
            "attach_url": None,
            "created_at": "2026-11-28T15:20:00Z",
            "updated_at": "2026-11-28T15:20:00Z",
            "attach_path": attach,
            "request_state": "requested",
            "exit_status": None,
            "detail": None,
        }

    @app.post("/apps/<name>/dynos/<dyno>/actions/stop")
    def stop_dyno(name: str, dyno: str) -> Any:
        find(name)
        kind, _, number = dyno.partition(".")
        if kind != "run":
            check_target(name, dyno)
        elif not number.isdigit() or not 1 <= int(number) <= len(fake.one_offs):
            raise NotFound(f"no one-off dyno {dyno} in {name}")
        return {"message": f"Stopping {dyno} of {name}"}, 202

    @app.post("/apps/<name>/formations/<kind>/actions/stop")
    def stop_type(name: str, kind: str) -> Any:
        find(name)
        if kind == "run":
            return {"message": f"Stopping every one-off dyno of {name}"}, 202
        check_target(name, kind)
        return {"message": f"Stopping {kind} of {name}"}, 202

    @app.post("/apps/<name>/log-sessions")
    def create_log_session(name: str) -> Any:
        find(name)
        log_sessions.check(body())
        stamp = "2026-11-28T15:30:00Z"
        url = f"{fake.url}/log-sessions/secret"
        return {"id": "id-log", "logplex_url": url, "created_at": stamp, "updated_at": stamp}, 201

    @app.get("/log-sessions/<secret>")
    def log_stream(secret: str) -> Any:
        raise NotFound("no such log session, or it expired")

    @app.get("/apps/<name>/releases")
    def get_releases(name: str) -> Any:
        find(name)
        return fake.releases

    @app.post("/apps/<name>/releases")
    def post_release(name: str) -> Any:
        find(name)
        given = body().get("release")
        wanted = None if given is None else validation.release_version(given)
        return fake.rollback(name, wanted), 201

    @app.get("/apps/<name>/builds")
    def get_builds(name: str) -> Any:
        find(name)
        return []

    @app.get("/apps/<name>/domains")
    def get_domains(name: str) -> Any:
        find(name)
        return fake.domains

    @app.post("/apps/<name>/domains")
    def add_domain(name: str) -> Any:
        find(name)
        domain = {"hostname": validation.custom_domain(body().get("hostname"), DOMAIN)}
        if domain in fake.domains:
            raise Conflict(f"domain {domain['hostname']} is already in use")
        fake.domains.append(domain)
        return domain, 201

    @app.delete("/apps/<name>/domains/<hostname>")
    def remove_domain(name: str, hostname: str) -> Any:
        find(name)
        if {"hostname": hostname.lower()} not in fake.domains:
            raise NotFound(f"domain {hostname} is not attached to {name}")
        fake.domains.remove({"hostname": hostname.lower()})
        return {"hostname": hostname}

    def installations() -> list[dict[str, Any]]:
        return [
            {"buildpack": {"url": url, "name": url}, "ordinal": ordinal}
            for ordinal, url in enumerate(fake.buildpacks)
        ]

    @app.get("/apps/<name>/buildpack-installations")
    def get_buildpacks(name: str) -> Any:
        find(name)
        return installations()

    @app.put("/apps/<name>/buildpack-installations")
    def put_buildpacks(name: str) -> Any:
        find(name)
        updates = body().get("updates")
        if not isinstance(updates, list) or not all(
            isinstance(u, dict) and isinstance(u.get("buildpack"), str) for u in updates
        ):
            raise InvalidParams('updates must be a list of {"buildpack": "URL"} objects')
        urls = [str(u["buildpack"]) for u in updates]
        for url in urls:  # the real API's check, against the default allow-list
            try:
                buildpack_source.parse(url, buildpack_source.DEFAULT_PREFIXES, ["python"])
            except BuildFailed as error:
                raise InvalidParams(error.message) from None
        fake.buildpacks = urls
        return installations()

    @app.get("/apps/<name>/log-lines")
    def get_log_lines(name: str) -> Any:
        find(name)
        args = flask.request.args
        if args.get("source") not in (None, "", "app", "paas"):
            raise InvalidParams("--source must be app or paas")
        try:
            num = int(args.get("num", "100"))
            start = int(args["after"]) if "after" in args else max(0, len(fake.log_lines) - num)
        except ValueError:
            raise InvalidParams("num and after must be whole numbers") from None
        return {"lines": fake.log_lines[start:], "cursor": len(fake.log_lines)}

    return app


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # keep werkzeug's access log out of the CLI output the tests read


def run(*args: str, input: str | None = None, obj: cli.Session | None = None) -> Result:
    """Invoke the CLI in-process; stdout and stderr stay separate on the result."""
    return CliRunner().invoke(cli.cli, list(args), input=input, obj=obj, catch_exceptions=False)
