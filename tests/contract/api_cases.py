"""The HTTP API's contract as data: one table of requests and the answers they must get.

tests/api runs every case against the real Flask application (on a real SQLite store),
tests/cli against the fake API the CLI tests talk to; so the fake cannot answer what the
real API would not, and a change to the real API's answers fails the fake's run until the
fake follows.

A case names the state it starts from (`given`), the requests that build on it (`before`,
each must get its expected status), then one request and what its answer must be: the
status, and the body's shape (its keys; for a list, every item's) and the values that are
fixed. Messages are free text: an error is only checked to be one line in
`{"id", "message"}` with the right id. What needs dynos or git (dyno listings with dynos
in them, builds, pushes, log lines from dynos) is left to tests/integration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from flask.testing import FlaskClient

from paas.domain import identity

# The states a case starts from.
NOTHING = "nothing"  # no app
APP = "app"  # the app `demo`, created through the API
DEPLOYED = "deployed"  # demo with v1 deploying: web and worker
TWO_RELEASES = "two releases"  # demo with v1 succeeded and v2 deploying

PROCESS_TYPES = {"web": "serve", "worker": "work"}
APP_KEYS = frozenset(
    {"id", "name", "stack", "build_stack", "owner", "region", "created_at", "updated_at"}
    | {"released_at", "git_url", "web_url", "maintenance", "acm", "archived_at"}
    | {"buildpack_provided_description", "create_status", "internal_routing", "locked"}
    | {"repo_size", "slug_size", "space", "team", "organization"}
    | {"current_release", "routing_error"}  # paas's own
)
DOMAIN_KEYS = frozenset(
    {"id", "hostname", "kind", "cname", "status", "acm_status", "acm_status_reason"}
    | {"sni_endpoint", "app", "created_at", "updated_at"}
)
DEBIAN_13, DEBIAN_12 = identity.stack("debian-13"), identity.stack("debian-12")
RELEASE_KEYS = frozenset(
    {"id", "version", "description", "status", "current", "created_at", "updated_at"}
    | {"slug", "user", "app", "addon_plan_names", "artifacts", "output_stream_url"}
    | {"eligible_for_rollback", "paas_status", "status_detail", "artifact", "image"}
    | {"process_types"}
)
ERROR_KEYS = frozenset({"id", "message"})
ANY = object()  # `equals` when the whole body is not fixed


def formation(web: int = 1, worker: int = 0, worker_size: str = "Standard-1X") -> list[object]:
    """demo's formation once deployed, types in name order, as FORMATION_FIELDS of it."""
    return [
        {"type": "web", "quantity": web, "size": "Standard-1X", "command": "serve"},
        {"type": "worker", "quantity": worker, "size": worker_size, "command": "work"},
    ]


FORMATION_FIELDS = ("type", "quantity", "size", "command")
FORMATION_KEYS = frozenset(
    {"id", "type", "quantity", "size", "command", "app", "created_at", "updated_at"}
)


class Target(Protocol):
    """An implementation of the API under test: a Flask test client, the token it takes,
    and a way to make releases (which only a push or the agent makes for real)."""

    @property
    def client(self) -> FlaskClient: ...

    @property
    def token(self) -> str: ...

    def release(self, app: str, process_types: Mapping[str, str], status: str) -> None:
        """The app's next release, with these process types, left in `status`."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: object = None  # sent as JSON; None: no body; bytes: sent as they are
    expect: int | None = None  # in `before`: the status it must get (None: any 2xx)
    headers: tuple[tuple[str, str], ...] = ()  # sent besides the token and content type


@dataclass(frozen=True)
class Case:
    name: str
    request: Request
    status: int
    given: str = APP
    before: tuple[Request, ...] = ()
    auth: str = "token"  # "token", "none" (no Authorization header) or "wrong"
    error: str | None = None  # the error id the answer must carry
    equals: object = ANY  # the whole body
    keys: frozenset[str] | None = None  # the body's keys; of each item for a list
    includes: Mapping[str, object] = field(default_factory=dict)  # of the body, or item 0
    length: int | None = None  # a list body's length
    fields: tuple[str, ...] = ()  # compare only these keys of each item with `equals`


def _get(path: str) -> Request:
    return Request("GET", path)


def _error(name: str, request: Request, status: int, error: str, given: str = APP) -> Case:
    return Case(name, request, status, given=given, error=error)


CONFIG = "/apps/demo/config-vars"
DYNOS = "/apps/demo/dynos"
DYNO_KEYS = frozenset(
    {"id", "name", "type", "state", "command", "size", "release", "app", "attach_url"}
    | {"created_at", "updated_at"}
)
RUN_KEYS = DYNO_KEYS | {"attach_path", "request_state", "exit_status", "detail"}
FORMATION = "/apps/demo/formation"
RELEASES = "/apps/demo/releases"
DOMAINS = "/apps/demo/domains"
WWW = {"hostname": "www.example.com"}
OWN = {"hostname": "demo.paas.localhost", "kind": "heroku", "cname": None}
CUSTOM = {"hostname": "www.example.com", "kind": "custom", "cname": "demo.paas.localhost"}
BUILDPACKS = "/apps/demo/buildpack-installations"
PY = {"buildpack": {"url": "heroku/python", "name": "heroku/python"}, "ordinal": 0}
SET_PY = Request("PUT", BUILDPACKS, {"updates": [{"buildpack": "heroku/python"}]})

CASES: tuple[Case, ...] = (
    # -- the account, authentication, unknown endpoints ----------------------------------
    Case(
        "account",
        _get("/account"),
        200,
        given=NOTHING,
        includes={"name": "admin", "email": "admin", "id": "00000000-0000-4000-8000-000000000000"},
    ),
    Case("no token", _get("/apps"), 401, auth="none", error="unauthorized"),
    Case("wrong token", _get("/apps"), 401, auth="wrong", error="unauthorized"),
    _error("unknown endpoint", _get("/nowhere"), 404, "not_found"),
    _error("method not allowed", Request("PUT", "/apps"), 405, "bad_request"),
    # -- apps ----------------------------------------------------------------------------
    Case("apps: none", _get("/apps"), 200, given=NOTHING, equals=[]),
    Case(
        "apps: list",
        _get("/apps"),
        200,
        length=1,
        keys=APP_KEYS,
        includes={"name": "demo", "stack": DEBIAN_13, "region": identity.region()},
    ),
    Case("apps: the caller's", _get("/users/~/apps"), 200, length=1, keys=APP_KEYS),
    Case(
        "apps:create",
        Request("POST", "/apps", {"name": "demo"}),
        201,
        given=NOTHING,
        keys=APP_KEYS,
        includes={
            "name": "demo",
            "stack": DEBIAN_13,
            "build_stack": DEBIAN_13,
            "current_release": None,
            "released_at": None,
            "web_url": "http://demo.paas.localhost:8080/",
            "routing_error": None,
        },
    ),
    Case("apps:create a name", Request("POST", "/apps", {}), 201, given=NOTHING, keys=APP_KEYS),
    Case(
        "apps:create --stack",
        Request("POST", "/apps", {"name": "old", "stack": "debian-12"}),
        201,
        keys=APP_KEYS,
        includes={"name": "old", "stack": DEBIAN_12},
    ),
    Case(
        "apps:create --region local",
        Request("POST", "/apps", {"name": "here", "region": "local"}),
        201,
        keys=APP_KEYS,
        includes={"region": identity.region()},
    ),
    _error(
        "apps:create another region",
        Request("POST", "/apps", {"name": "far", "region": "eu"}),
        422,
        "invalid_params",
    ),
    _error(
        "apps:create bad name", Request("POST", "/apps", {"name": "Bad_N"}), 422, "invalid_params"
    ),
    _error(
        "apps:create unknown stack",
        Request("POST", "/apps", {"name": "x", "stack": "plan9"}),
        422,
        "invalid_params",
    ),
    _error("apps:create taken", Request("POST", "/apps", {"name": "demo"}), 409, "conflict"),
    _error("body not JSON", Request("POST", "/apps", b'{"name": '), 422, "invalid_params"),
    _error("body not an object", Request("POST", "/apps", ["demo"]), 422, "invalid_params"),
    Case("apps:info", _get("/apps/demo"), 200, keys=APP_KEYS, includes={"name": "demo"}),
    Case(
        "apps:info deployed",
        _get("/apps/demo"),
        200,
        given=DEPLOYED,
        keys=APP_KEYS,
        includes={"current_release": 1},
    ),
    _error("apps:info unknown app", _get("/apps/nope"), 404, "not_found"),
    Case(
        "stack:set",
        Request("PATCH", "/apps/demo", {"stack": "debian-12"}),
        200,
        keys=APP_KEYS | {"stack_build"},  # how the stack's build goes (built, building…)
        includes={"stack": DEBIAN_12},
    ),
    Case(
        "apps:rename",
        Request("PATCH", "/apps/demo", {"name": "renamed"}),
        200,
        keys=APP_KEYS,
        includes={"name": "renamed", "web_url": "http://renamed.paas.localhost:8080/"},
    ),
    Case(
        "apps:rename, then found by the new name",
        _get("/apps/renamed"),
        200,
        before=(Request("PATCH", "/apps/demo", {"name": "renamed"}),),
        includes={"name": "renamed"},
    ),
    Case(
        "apps:rename taken",
        Request("PATCH", "/apps/demo", {"name": "other"}),
        409,
        before=(Request("POST", "/apps", {"name": "other"}),),
        error="conflict",
    ),
    _error(
        "apps:rename bad name",
        Request("PATCH", "/apps/demo", {"name": "Bad_N"}),
        422,
        "invalid_params",
    ),
    _error("apps:update nothing", Request("PATCH", "/apps/demo", {}), 422, "invalid_params"),
    _error(
        "stack:set unknown",
        Request("PATCH", "/apps/demo", {"stack": "plan9"}),
        422,
        "invalid_params",
    ),
    Case(
        "apps:destroy",
        Request("DELETE", "/apps/demo"),
        200,
        keys=APP_KEYS,
        includes={"name": "demo"},
    ),
    Case(
        "apps:destroy, then gone",
        _get("/apps/demo"),
        404,
        before=(Request("DELETE", "/apps/demo"),),
        error="not_found",
    ),
    _error("apps:destroy unknown app", Request("DELETE", "/apps/nope"), 404, "not_found"),
    # -- config vars ---------------------------------------------------------------------
    Case("config: none", _get(CONFIG), 200, equals={}),
    Case(
        "config:set",
        Request("PATCH", CONFIG, {"A": "1", "URL": "postgres://u:p@h/db?a=b"}),
        200,
        equals={"A": "1", "URL": "postgres://u:p@h/db?a=b"},
    ),
    Case(
        "config after set",
        _get(CONFIG),
        200,
        before=(Request("PATCH", CONFIG, {"A": "1"}),),
        equals={"A": "1"},
    ),
    Case(
        "config:unset",
        Request("PATCH", CONFIG, {"A": None}),
        200,
        before=(Request("PATCH", CONFIG, {"A": "1", "B": "2"}),),
        equals={"B": "2"},
    ),
    _error("config:set not a string", Request("PATCH", CONFIG, {"A": 1}), 422, "invalid_params"),
    _error("config:set bad key", Request("PATCH", CONFIG, {"A B": "1"}), 422, "invalid_params"),
    _error(
        "config:set reserved key", Request("PATCH", CONFIG, {"PORT": "1"}), 422, "invalid_params"
    ),
    _error("config:set nothing", Request("PATCH", CONFIG, {}), 422, "invalid_params"),
    _error("config:set not an object", Request("PATCH", CONFIG, ["A"]), 422, "invalid_params"),
    Case(
        "config:set refused changes nothing",
        _get(CONFIG),
        200,
        before=(
            Request("PATCH", CONFIG, {"A": "1"}),
            Request("PATCH", CONFIG, {"B": "2", "C": 3}, expect=422),
        ),
        equals={"A": "1"},
    ),
    _error("config unknown app", _get("/apps/nope/config-vars"), 404, "not_found"),
    # -- formation -----------------------------------------------------------------------
    Case("formation before a release", _get(FORMATION), 200, equals=[]),
    Case(
        "formation",
        _get(FORMATION),
        200,
        given=DEPLOYED,
        equals=formation(),
        fields=FORMATION_FIELDS,
        keys=FORMATION_KEYS,
    ),
    Case(
        "ps:scale",
        Request("PATCH", FORMATION, {"updates": [{"type": "web", "quantity": 3}]}),
        200,
        given=DEPLOYED,
        equals=formation(web=3),
        fields=FORMATION_FIELDS,
    ),
    Case(
        "ps:scale two types",
        Request(
            "PATCH",
            FORMATION,
            {"updates": [{"type": "web", "quantity": 0}, {"type": "worker", "quantity": 2}]},
        ),
        200,
        given=DEPLOYED,
        equals=formation(web=0, worker=2),
        fields=FORMATION_FIELDS,
    ),
    Case(
        "ps:resize",
        Request("PATCH", FORMATION, {"updates": [{"type": "worker", "size": "standard-2x"}]}),
        200,
        given=DEPLOYED,
        equals=formation(worker_size="Standard-2X"),
        fields=FORMATION_FIELDS,
    ),
    Case(
        "formation after scale",
        _get(FORMATION),
        200,
        given=DEPLOYED,
        before=(Request("PATCH", FORMATION, {"updates": [{"type": "worker", "quantity": 1}]}),),
        equals=formation(worker=1),
        fields=FORMATION_FIELDS,
    ),
    Case(
        "ps:scale as Heroku's CLI sends it",
        Request(
            "PATCH",
            FORMATION,
            {"updates": [{"type": "web", "quantity": "2"}, {"type": "worker", "quantity": "+1"}]},
        ),
        200,
        given=DEPLOYED,
        equals=formation(web=2, worker=1),
        fields=FORMATION_FIELDS,
    ),
    Case(
        "ps:type in Heroku's spelling",
        Request("PATCH", FORMATION, {"updates": [{"type": "worker", "size": "Standard-2X"}]}),
        200,
        given=DEPLOYED,
        equals=formation(worker_size="Standard-2X"),
        fields=FORMATION_FIELDS,
    ),
    Case(
        "formation of one type",
        _get(FORMATION + "/worker"),
        200,
        given=DEPLOYED,
        keys=FORMATION_KEYS,
        includes={"type": "worker", "quantity": 0, "size": "Standard-1X"},
    ),
    Case(
        "scale one type",
        Request("PATCH", FORMATION + "/worker", {"quantity": 2, "size": "standard-2x"}),
        200,
        given=DEPLOYED,
        includes={"type": "worker", "quantity": 2, "size": "Standard-2X"},
    ),
    _error(
        "formation of no such type",
        _get(FORMATION + "/clock"),
        404,
        "not_found",
        given=DEPLOYED,
    ),
    _error(
        "ps:scale all or nothing",
        Request(
            "PATCH",
            FORMATION,
            {"updates": [{"type": "web", "quantity": 3}, {"type": "worker", "size": "huge"}]},
        ),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    Case(
        "formation unchanged after a refused batch",
        _get(FORMATION),
        200,
        given=DEPLOYED,
        before=(
            Request(
                "PATCH",
                FORMATION,
                {"updates": [{"type": "web", "quantity": 3}, {"type": "clock", "quantity": 1}]},
                expect=422,
            ),
        ),
        equals=formation(),
        fields=FORMATION_FIELDS,
    ),
    _error(
        "ps:scale unknown type",
        Request("PATCH", FORMATION, {"updates": [{"type": "clock", "quantity": 1}]}),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    _error(
        "ps:scale negative",
        Request("PATCH", FORMATION, {"updates": [{"type": "web", "quantity": -1}]}),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    _error(
        "ps:resize unknown size",
        Request("PATCH", FORMATION, {"updates": [{"type": "web", "size": "huge"}]}),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    _error(
        "ps:scale not a list",
        Request("PATCH", FORMATION, {"updates": "web=2"}),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    _error(
        "ps:scale before a release",
        Request("PATCH", FORMATION, {"updates": [{"type": "web", "quantity": 1}]}),
        422,
        "invalid_params",
    ),
    _error("formation unknown app", _get("/apps/nope/formation"), 404, "not_found"),
    # -- releases ------------------------------------------------------------------------
    Case("releases: none", _get(RELEASES), 200, equals=[]),
    Case(
        "releases",
        _get(RELEASES),
        200,
        given=DEPLOYED,
        length=1,
        keys=RELEASE_KEYS,
        includes={
            "version": 1,
            "status": "pending",
            "paas_status": "deploying",
            "current": True,
            "status_detail": None,
            "process_types": PROCESS_TYPES,
            "output_stream_url": None,
        },
    ),
    Case(
        "releases, newest first as Heroku's CLI asks",
        Request("GET", RELEASES, headers=(("Range", "version ..; max=1, order=desc"),)),
        206,
        given=TWO_RELEASES,
        length=1,
        keys=RELEASE_KEYS,
        includes={"version": 2, "current": True},
    ),
    Case(
        "release by version",
        _get(RELEASES + "/v1"),
        200,
        given=TWO_RELEASES,
        keys=RELEASE_KEYS,
        includes={"version": 1, "status": "succeeded", "eligible_for_rollback": True},
    ),
    Case(
        "release config vars",
        _get(RELEASES + "/1/config-vars"),
        200,
        given=TWO_RELEASES,
        equals={},
    ),
    _error("release unknown", _get(RELEASES + "/9"), 404, "not_found", given=TWO_RELEASES),
    _error(
        "release unknown id",
        _get(RELEASES + "/00000000-0000-0000-0000-000000000000"),
        404,
        "not_found",
        given=TWO_RELEASES,
    ),
    Case(
        "releases, oldest first",
        _get(RELEASES),
        200,
        given=TWO_RELEASES,
        length=2,
        keys=RELEASE_KEYS,
        includes={"version": 1, "status": "succeeded", "current": False},
    ),
    Case(
        "rollback",
        Request("POST", RELEASES, {}),
        201,
        given=TWO_RELEASES,
        keys=RELEASE_KEYS,
        includes={
            "version": 3,
            "description": "Rollback to v1",
            "status": "pending",
            "paas_status": "deploying",
            "current": True,
        },
    ),
    Case(
        "rollback v1",
        Request("POST", RELEASES, {"release": 1}),
        201,
        given=TWO_RELEASES,
        keys=RELEASE_KEYS,
        includes={"version": 3, "description": "Rollback to v1"},
    ),
    Case(
        "releases after rollback",
        _get(RELEASES),
        200,
        given=TWO_RELEASES,
        before=(Request("POST", RELEASES, {"release": 1}, expect=201),),
        length=3,
        keys=RELEASE_KEYS,
    ),
    _error(
        "rollback, nothing earlier",
        Request("POST", RELEASES, {}),
        404,
        "not_found",
        given=DEPLOYED,
    ),
    _error(
        "rollback unknown version",
        Request("POST", RELEASES, {"release": 9}),
        404,
        "not_found",
        given=TWO_RELEASES,
    ),
    _error(
        "rollback bad version",
        Request("POST", RELEASES, {"release": "x"}),
        422,
        "invalid_params",
        given=TWO_RELEASES,
    ),
    _error("rollback before a release", Request("POST", RELEASES, {}), 404, "not_found"),
    _error("releases unknown app", _get("/apps/nope/releases"), 404, "not_found"),
    Case("builds: none", _get("/apps/demo/builds"), 200, equals=[]),
    _error("build unknown", _get("/apps/demo/builds/nope"), 404, "not_found"),
    _error(
        "build from a source_blob URL",
        Request("POST", "/apps/demo/builds", {"source_blob": {"url": "https://x.test/a.tgz"}}),
        422,
        "invalid_params",
    ),
    _error("slug unknown", _get("/apps/demo/slugs/nope"), 404, "not_found", given=DEPLOYED),
    _error("build output, wrong secret", _get("/build-output/nope"), 404, "not_found"),
    # -- dynos ---------------------------------------------------------------------------
    Case("ps, no dyno runs", _get("/apps/demo/dynos"), 200, given=DEPLOYED, equals=[]),
    Case(
        "restart",
        Request("DELETE", "/apps/demo/dynos"),
        202,
        equals={"message": "Restarting all dynos of demo"},
    ),
    Case(
        "restart a type",
        Request("DELETE", "/apps/demo/dynos/web"),
        202,
        given=DEPLOYED,
        equals={"message": "Restarting web of demo"},
    ),
    Case(
        "restart a dyno",
        Request("DELETE", "/apps/demo/dynos/web.1"),
        202,
        given=DEPLOYED,
        equals={"message": "Restarting web.1 of demo"},
    ),
    Case(
        "ps:restart -p (Heroku's path)",
        Request("DELETE", "/apps/demo/formations/web"),
        202,
        given=DEPLOYED,
        equals={"message": "Restarting web of demo"},
    ),
    _error(
        "restart unknown type",
        Request("DELETE", "/apps/demo/dynos/clock"),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    _error("dynos unknown app", _get("/apps/nope/dynos"), 404, "not_found"),
    # -- one-off dynos (paas run, run:detached, ps:stop) ---------------------------------
    Case(
        "run:detached",
        Request("POST", DYNOS, {"command": "echo hi"}),
        201,
        given=DEPLOYED,
        keys=RUN_KEYS,
        includes={
            "name": "run.1",
            "type": "run",
            "command": "echo hi",
            "state": "starting",
            "size": "Standard-1X",
            "attach_path": None,
        },
    ),
    Case(
        "run attached",
        Request("POST", DYNOS, {"command": "bash", "attach": True, "tty": True, "rows": 24}),
        201,
        given=DEPLOYED,
        before=(Request("POST", DYNOS, {"command": "true"}),),
        keys=RUN_KEYS,
        includes={"name": "run.2", "attach_path": "/apps/demo/dynos/run.2/attach"},
    ),
    _error(
        "run before a release", Request("POST", DYNOS, {"command": "true"}), 422, "invalid_params"
    ),
    _error(
        "run without a command",
        Request("POST", DYNOS, {"command": " "}),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    _error(
        "run of a bad size",
        Request("POST", DYNOS, {"command": "true", "size": "huge"}),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    _error(
        "run with a bad env",
        Request("POST", DYNOS, {"command": "true", "env": {"A": {"nested": "no"}}}),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    Case(
        "ps:stop a one-off",
        Request("POST", "/apps/demo/dynos/run.1/actions/stop"),
        202,
        given=DEPLOYED,
        before=(Request("POST", DYNOS, {"command": "sleep 60"}),),
        equals={"message": "Stopping run.1 of demo"},
    ),
    Case(
        "ps:stop a formation dyno: the formation starts a fresh one",
        Request("POST", "/apps/demo/dynos/web.1/actions/stop"),
        202,
        given=DEPLOYED,
        equals={"message": "Stopping web.1 of demo"},
    ),
    Case(
        "ps:stop a process type",
        Request("POST", "/apps/demo/formations/worker/actions/stop"),
        202,
        given=DEPLOYED,
        equals={"message": "Stopping worker of demo"},
    ),
    Case(
        "ps:stop every one-off",
        Request("POST", "/apps/demo/formations/run/actions/stop"),
        202,
        given=DEPLOYED,
        before=(Request("POST", DYNOS, {"command": "sleep 60"}),),
        equals={"message": "Stopping every one-off dyno of demo"},
    ),
    _error(
        "ps:stop no such type",
        Request("POST", "/apps/demo/formations/clock/actions/stop"),
        422,
        "invalid_params",
        given=DEPLOYED,
    ),
    Case(
        "run with Heroku's CLI's env and size",
        Request(
            "POST",
            DYNOS,
            {"command": "true", "attach": True, "env": {"COLUMNS": 80}, "size": "Standard-2X"},
        ),
        201,
        given=DEPLOYED,
        keys=RUN_KEYS,
        includes={"size": "Standard-2X", "attach_path": "/apps/demo/dynos/run.1/attach"},
    ),
    Case(
        "a one-off dyno waiting to start",
        _get(DYNOS + "/run.1"),
        200,
        given=DEPLOYED,
        before=(Request("POST", DYNOS, {"command": "sleep 60"}),),
        keys=RUN_KEYS,
        includes={"name": "run.1", "state": "starting"},
    ),
    _error("no such dyno", _get(DYNOS + "/web.7"), 404, "not_found", given=DEPLOYED),
    _error(
        "ps:stop no such one-off",
        Request("POST", "/apps/demo/dynos/run.9/actions/stop"),
        404,
        "not_found",
        given=DEPLOYED,
    ),
    # -- domains -------------------------------------------------------------------------
    Case("domains: its own", _get(DOMAINS), 200, length=1, keys=DOMAIN_KEYS, includes=OWN),
    Case("domains:add", Request("POST", DOMAINS, WWW), 201, keys=DOMAIN_KEYS, includes=CUSTOM),
    Case(
        "domains:add lowercases",
        Request("POST", DOMAINS, {"hostname": "WWW.Example.com", "sni_endpoint": None}),
        201,
        includes=WWW,
    ),
    Case(
        "domains",
        _get(DOMAINS),
        200,
        before=(Request("POST", DOMAINS, WWW),),
        length=2,
        keys=DOMAIN_KEYS,
        includes=OWN,
    ),
    Case(
        "domains:info",
        _get(f"{DOMAINS}/www.example.com"),
        200,
        before=(Request("POST", DOMAINS, WWW),),
        keys=DOMAIN_KEYS,
        includes=CUSTOM,
    ),
    _error("domains:info not attached", _get(f"{DOMAINS}/x.example.com"), 404, "not_found"),
    _error(
        "domains:add with a certificate",
        Request("POST", DOMAINS, {"hostname": "www.example.com", "sni_endpoint": "cert"}),
        422,
        "invalid_params",
    ),
    _error(
        "domains:remove its own",
        Request("DELETE", f"{DOMAINS}/demo.paas.localhost"),
        422,
        "invalid_params",
    ),
    Case("sni-endpoints: none", _get("/apps/demo/sni-endpoints"), 200, equals=[]),
    _error(
        "domains:add bad name", Request("POST", DOMAINS, {"hostname": "a b"}), 422, "invalid_params"
    ),
    _error(
        "domains:add the platform's",
        Request("POST", DOMAINS, {"hostname": "x.paas.localhost"}),
        422,
        "invalid_params",
    ),
    Case(
        "domains:add taken",
        Request("POST", DOMAINS, WWW),
        409,
        before=(Request("POST", DOMAINS, WWW),),
        error="conflict",
    ),
    Case(
        "domains:remove",
        Request("DELETE", f"{DOMAINS}/www.example.com"),
        200,
        before=(Request("POST", DOMAINS, WWW),),
        keys=DOMAIN_KEYS,
        includes=CUSTOM,
    ),
    _error(
        "domains:remove not attached",
        Request("DELETE", f"{DOMAINS}/www.example.com"),
        404,
        "not_found",
    ),
    _error("domains unknown app", _get("/apps/nope/domains"), 404, "not_found"),
    # -- buildpack installations ---------------------------------------------------------
    Case("buildpacks: none", _get(BUILDPACKS), 200, equals=[]),
    Case("buildpacks:set", SET_PY, 200, equals=[PY]),
    Case("buildpacks", _get(BUILDPACKS), 200, before=(SET_PY,), equals=[PY]),
    Case("buildpacks:clear", Request("PUT", BUILDPACKS, {"updates": []}), 200, equals=[]),
    _error(
        "buildpacks:set a host path",
        Request("PUT", BUILDPACKS, {"updates": [{"buildpack": "/etc"}]}),
        422,
        "invalid_params",
    ),
    _error(
        "buildpacks:set not a list",
        Request("PUT", BUILDPACKS, {"updates": "heroku/python"}),
        422,
        "invalid_params",
    ),
    Case(
        "buildpacks:set a bad one stores nothing",
        _get(BUILDPACKS),
        200,
        before=(
            SET_PY,
            Request(
                "PUT",
                BUILDPACKS,
                {"updates": [{"buildpack": "heroku/python"}, {"buildpack": "x"}]},
                expect=422,
            ),
        ),
        equals=[PY],
    ),
    _error("buildpacks unknown app", _get("/apps/nope/buildpack-installations"), 404, "not_found"),
    # -- log lines -----------------------------------------------------------------------
    Case(
        "heroku logs: a log session",
        Request("POST", "/apps/demo/log-sessions", {"lines": 50, "source": "app", "tail": True}),
        201,
        keys=frozenset({"id", "logplex_url", "created_at", "updated_at"}),
    ),
    Case(
        "a log session of one process type",
        Request("POST", "/apps/demo/log-sessions", {"dyno": "web", "source": "heroku"}),
        201,
        keys=frozenset({"id", "logplex_url", "created_at", "updated_at"}),
    ),
    _error(
        "a log session of too many lines",
        Request("POST", "/apps/demo/log-sessions", {"lines": 100000}),
        422,
        "invalid_params",
    ),
    _error(
        "a log session of an unknown source",
        Request("POST", "/apps/demo/log-sessions", {"source": "router"}),
        422,
        "invalid_params",
    ),
    _error(
        "a log session of an unknown app",
        Request("POST", "/apps/nope/log-sessions", {}),
        404,
        "not_found",
    ),
    _error("no such log stream", _get("/log-sessions/not-a-secret"), 404, "not_found"),
    Case("logs", _get("/apps/demo/log-lines"), 200, keys=frozenset({"lines", "cursor"})),
    _error("logs bad num", _get("/apps/demo/log-lines?num=abc"), 422, "invalid_params"),
    _error("logs bad source", _get("/apps/demo/log-lines?source=x"), 422, "invalid_params"),
    _error("logs unknown app", _get("/apps/nope/log-lines"), 404, "not_found"),
)
CASE_IDS = [case.name for case in CASES]


def send(target: Target, request: Request, auth: str = "token") -> tuple[int, object]:
    """One request through the target's test client; its status and JSON body."""
    headers = {"Content-Type": "application/json", **dict(request.headers)}
    if auth != "none":
        headers["Authorization"] = f"Bearer {target.token if auth == 'token' else 'wrong'}"
    body = request.body
    data = body if isinstance(body, bytes) or body is None else json.dumps(body)
    response = target.client.open(request.path, method=request.method, data=data, headers=headers)
    answer = f"{request.method} {request.path}: {response.status_code} {response.data[:300]!r}"
    assert response.mimetype == "application/json", answer
    return response.status_code, response.get_json()


def arrange(target: Target, given: str) -> None:
    """Brings the target to the state `given` names (an app through the API itself)."""
    if given == NOTHING:
        return
    assert send(target, Request("POST", "/apps", {"name": "demo"}))[0] == 201
    if given in (DEPLOYED, TWO_RELEASES):
        target.release("demo", PROCESS_TYPES, "succeeded" if given == TWO_RELEASES else "deploying")
    if given == TWO_RELEASES:
        target.release("demo", PROCESS_TYPES, "deploying")


def run(target: Target, case: Case) -> None:
    """Runs one case against the target; an assertion names the case and the answer."""
    arrange(target, case.given)
    for step in case.before:
        status, body = send(target, step)
        ok = status == step.expect if step.expect is not None else 200 <= status < 300
        assert ok, f"{case.name}: before, {step.method} {step.path} answered {status} {body}"
    status, body = send(target, case.request, case.auth)
    check(case, status, body)


def check(case: Case, status: int, body: object) -> None:
    answer = f"{case.name}: {case.request.method} {case.request.path} answered {status} {body!r}"
    assert status == case.status, answer
    if case.error is not None:
        assert isinstance(body, dict) and set(body) == ERROR_KEYS, answer
        assert body["id"] == case.error, answer
        message = body["message"]
        assert isinstance(message, str) and message and "\n" not in message, answer
    if case.equals is not ANY:
        assert _projected(body, case.fields) == case.equals, answer
    if case.length is not None:
        assert isinstance(body, list) and len(body) == case.length, answer
    items = body if isinstance(body, list) else [body]
    if case.keys is not None:
        assert items and all(isinstance(i, dict) and set(i) == case.keys for i in items), answer
    if case.includes:
        first = items[0]
        assert isinstance(first, dict), answer
        assert {k: first.get(k) for k in case.includes} == dict(case.includes), answer


def _projected(body: object, fields: tuple[str, ...]) -> object:
    """The body, or with `fields`, each item (of a list, or the object) cut down to them."""
    if not fields:
        return body
    if isinstance(body, list):
        return [_projected(item, fields) for item in body]
    if isinstance(body, dict):
        return {k: body.get(k) for k in fields}
    return body
