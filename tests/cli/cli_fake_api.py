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

from paas.api import protocol
from paas.cli import commands as cli
from paas.cli import run as _run  # noqa: F401  # registers run, run:detached, ps:stop
from paas.cli import users as _users  # noqa: F401  # registers login, access*, audit ...
from paas.domain import buildpack_source, formation, identity, ranges, sizes, validation
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
PAGE = 100  # the fake's largest page of apps: smaller than the real one, to walk pages
STACKS = ("debian-12", "debian-13")  # the real API's stacks; the default last


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


HEROKU_STATUS = {
    "pending": "pending",
    "deploying": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "superseded": "expired",
}


@dataclasses.dataclass
class FakeApi:
    url: str
    requests: list[Recorded] = dataclasses.field(default_factory=list)
    apps: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    config: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    formation: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    dynos: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    releases: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    domains: list[str] = dataclasses.field(default_factory=list)  # custom hostnames
    buildpacks: list[str] = dataclasses.field(default_factory=list)
    log_lines: list[str] = dataclasses.field(default_factory=list)
    one_offs: list[str] = dataclasses.field(default_factory=list)  # commands, run.1 first
    builds: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add_app(self, name: str, stack: str = STACKS[-1]) -> dict[str, Any]:
        app = {
            "id": f"id-{name}",
            "name": name,
            "created_at": "2026-11-28T15:00:00Z",
            "updated_at": "2026-11-28T15:00:00Z",
            "released_at": None,
            "owner": identity.user(None, "admin"),
            "region": identity.region(),
            **{k: None for k in ("archived_at", "buildpack_provided_description")},
            **{k: None for k in ("internal_routing", "repo_size", "slug_size")},
            **{k: None for k in ("space", "team", "organization")},
            **{k: False for k in ("maintenance", "acm", "locked")},
            "create_status": "complete",
            "current_release": None,
            "routing_error": None,
        }
        self.apps[name] = app
        self.config[name] = {}
        return self.named(name, stack)

    def named(self, name: str, stack: str | None = None) -> dict[str, Any]:
        """The app's fields that follow its name and stack."""
        app = self.apps[name]
        app["name"] = name
        app["git_url"] = f"{self.url}/{name}.git"
        app["web_url"] = f"http://{name}.{DOMAIN}:8080/"
        if stack is not None:
            app["stack"] = app["build_stack"] = identity.stack(stack)
        return app

    def add_release(self, process_types: dict[str, str], status: str) -> dict[str, Any]:
        """The next release, as a push (and the agent, for `status`) would leave it; new
        process types join the formation, web at 1."""
        version = len(self.releases) + 1
        release = {
            "id": f"00000000-0000-4000-8000-{version:012d}",
            "version": version,
            "description": "Deploy abcdef12",
            "status": HEROKU_STATUS[status],
            "paas_status": status,
            "status_detail": None,
            "current": False,
            "eligible_for_rollback": status == "succeeded",
            "slug": {"id": f"00000000-0000-5000-8000-{version:012d}"},
            "artifacts": [{"type": "slug", "id": f"00000000-0000-5000-8000-{version:012d}"}],
            "user": {"id": "00000000-0000-5000-8000-000000000000", "email": "admin"},
            "app": {"id": "id-demo", "name": "demo"},
            "addon_plan_names": [],
            "output_stream_url": None,
            "image": None,
            "created_at": "2026-11-28T15:10:00Z",
            "updated_at": "2026-11-28T15:10:00Z",
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
                if r["version"] < current["version"] and r["paas_status"] == "succeeded"
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
        runnable = [r for r in self.releases if r["paas_status"] in ("deploying", "succeeded")]
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
        return {"id": "00000000-0000-4000-8000-000000000000", "email": "admin", "name": "admin"}

    @app.get("/apps")
    @app.get("/users/~/apps")
    def list_apps() -> Any:
        """Paged as the real API pages (Range), but at most PAGE apps a page."""
        asked = ranges.parse(flask.request.headers.get("Range"), ("name", "id"))
        page = ranges.page(
            list(fake.apps.values()), dataclasses.replace(asked, max=min(asked.max, PAGE))
        )
        headers = {"Content-Range": page.content_range}
        if page.next_range is None:
            return page.items, 200, headers
        return page.items, 206, {**headers, "Next-Range": page.next_range}

    @app.post("/apps")
    def create_app() -> Any:
        given = body()
        name = validation.app_name(given.get("name") or "misty-river-4242")
        chosen = stack(given.get("stack") or STACKS[-1])
        if given.get("region") not in (None, "local"):
            raise InvalidParams(f"unknown region {given.get('region')!r}: this has one, 'local'")
        if name in fake.apps:
            raise Conflict(f"app {name!r} already exists: choose another name")
        return fake.add_app(name, chosen), 201

    @app.get("/apps/<name>")
    def get_app(name: str) -> Any:
        return find(name)

    @app.patch("/apps/<name>")
    def update_app(name: str) -> Any:
        given, app = body(), find(name)
        if given.get("name") is not None:
            new = validation.app_name(given["name"])
            if new != name and new in fake.apps:
                raise Conflict(f"app {new!r} already exists: choose another name")
            fake.apps[new] = fake.apps.pop(name)
            fake.config[new] = fake.config.pop(name)
            app = fake.named(new)
        if given.get("stack") is None:
            if given.get("name") is None:
                raise InvalidParams('give a new "name", or a "build_stack" (or "stack")')
            return app
        chosen = stack(given.get("stack"))
        fake.named(app["name"], chosen)
        return {**app, "stack_build": {"name": chosen, "state": "built", "reason": ""}}

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
        return protocol.listing(fake.releases, ("version", "id"))

    def release(ref: object) -> dict[str, Any]:
        found = next((r for r in fake.releases if ref in (r["id"], r["version"])), None)
        if found is None and isinstance(ref, str) and len(ref) != 36:
            version = validation.release_version(ref)
            found = next((r for r in fake.releases if r["version"] == version), None)
        if found is None:
            raise NotFound(f"release {ref} not found: `paas releases` lists them")
        return found

    @app.get("/apps/<name>/releases/<ref>")
    def get_release(name: str, ref: str) -> Any:
        find(name)
        return release(ref)

    @app.get("/apps/<name>/releases/<ref>/config-vars")
    def get_release_config(name: str, ref: str) -> Any:
        find(name)
        release(ref)
        return {}

    @app.post("/apps/<name>/releases")
    def post_release(name: str) -> Any:
        find(name)
        given = body().get("release")
        wanted = None if given is None else validation.release_version(given)
        return fake.rollback(name, wanted), 201

    @app.get("/apps/<name>/builds")
    def get_builds(name: str) -> Any:
        find(name)
        return fake.builds

    @app.post("/apps/<name>/builds")
    def post_build(name: str) -> Any:
        find(name)
        raise InvalidParams("paas builds only what is pushed with git, not a source_blob URL")

    @app.get("/apps/<name>/builds/<build>")
    def get_build(name: str, build: str) -> Any:
        find(name)
        raise NotFound(f"build {build} of {name} not found: `paas builds` lists them")

    @app.get("/apps/<name>/slugs/<slug>")
    def get_slug(name: str, slug: str) -> Any:
        find(name)
        raise NotFound(f"slug {slug} of {name} not found")

    @app.get("/build-output/<secret>")
    def get_build_output(secret: str) -> Any:
        raise NotFound("no such build output stream")

    def domain(name: str, hostname: str) -> dict[str, Any]:
        own = hostname == f"{name}.{DOMAIN}"
        return {
            "id": f"id-{hostname}",
            "hostname": hostname,
            "kind": "heroku" if own else "custom",
            "cname": None if own else f"{name}.{DOMAIN}",
            "status": "succeeded",
            **{k: None for k in ("acm_status", "acm_status_reason", "sni_endpoint")},
            "app": {"id": find(name)["id"], "name": name},
            "created_at": "2026-11-28T15:00:00Z",
            "updated_at": "2026-11-28T15:00:00Z",
        }

    def domains(name: str) -> list[dict[str, Any]]:
        return [domain(name, h) for h in [f"{name}.{DOMAIN}", *sorted(fake.domains)]]

    def one_domain(name: str, ref: str) -> dict[str, Any]:
        for shown in domains(name):
            if ref.lower() in (shown["hostname"], shown["id"]):
                return shown
        raise NotFound(f"domain {ref} is not attached to {name}")

    @app.get("/apps/<name>/domains")
    def get_domains(name: str) -> Any:
        return domains(name)

    @app.get("/apps/<name>/domains/<ref>")
    def get_domain(name: str, ref: str) -> Any:
        return one_domain(name, ref)

    @app.get("/apps/<name>/sni-endpoints")
    def get_sni_endpoints(name: str) -> Any:
        find(name)
        return []

    @app.post("/apps/<name>/domains")
    def add_domain(name: str) -> Any:
        find(name)
        given = body()
        if given.get("sni_endpoint") is not None:
            raise InvalidParams("sni_endpoint must be null: this platform keeps no SNI endpoints")
        hostname = validation.custom_domain(given.get("hostname"), DOMAIN)
        if hostname in fake.domains:
            raise Conflict(f"domain {hostname} is already in use")
        fake.domains.append(hostname)
        return domain(name, hostname), 201

    @app.delete("/apps/<name>/domains/<ref>")
    def remove_domain(name: str, ref: str) -> Any:
        shown = one_domain(name, ref)
        if shown["kind"] == "heroku":
            raise InvalidParams(f"{shown['hostname']} is the app's own hostname")
        fake.domains.remove(shown["hostname"])
        return shown

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
