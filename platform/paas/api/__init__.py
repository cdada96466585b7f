"""The HTTP API: a Flask application factory, one blueprint per resource.

Every route needs a valid token (Bearer for the API, HTTP Basic password for git). Every
error leaves as JSON `{"id": ..., "message": ...}` with Heroku's ids: a PaasError with its
own, an HTTP error of the framework (404, 405, 400...) with one named by its status, and
anything unexpected as a 500 `internal_server_error` whose traceback goes to the log only.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from paas.api import access as access_api
from paas.api import (
    addons,
    apps,
    auth,
    buildpacks,
    domains,
    dynos,
    formation,
    git,
    log_sessions,
    protocol,
    releases,
    run,
    stacks,
)
from paas.api import pg as pg_api
from paas.api import users as users_api
from paas.api.context import Context
from paas.domain import settings as settings_module
from paas.domain.errors import PaasError, TooManyRequests
from paas.domain.settings import Settings
from paas.state.logs import LogStore
from paas.state.store import Store


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or settings_module.from_env()
    flask_app = Flask("paas")
    flask_app.extensions["paas"] = Context(
        settings, Store(settings.db_path), LogStore(settings.logs_db_path)
    )
    flask_app.before_request(protocol.begin)  # first: even a refused request has an id
    flask_app.before_request(auth.require_token)  # but routes marked auth.public
    flask_app.after_request(protocol.finish)
    flask_app.after_request(users_api.record_change)  # the audit: after the answer is made
    for blueprint in (
        apps.blueprint,
        buildpacks.blueprint,
        domains.blueprint,
        dynos.blueprint,
        formation.blueprint,
        log_sessions.blueprint,
        releases.blueprint,
        git.blueprint,
        stacks.blueprint,
        addons.blueprint,
        pg_api.blueprint,
        run.blueprint,
        users_api.blueprint,
        access_api.blueprint,
    ):
        flask_app.register_blueprint(blueprint)

    @flask_app.errorhandler(PaasError)
    def paas_error(error: PaasError) -> tuple[Response, int]:
        response = jsonify(id=error.id, message=error.message)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="paas"'
        if isinstance(error, TooManyRequests):
            response.headers["Retry-After"] = error.retry_after
        return response, error.status

    @flask_app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        if status == 404:
            return jsonify(id="not_found", message="no such API endpoint"), 404
        if status == 405:
            return jsonify(id="bad_request", message="method not allowed on this endpoint"), 405
        name = (error.name or "error").lower().replace(" ", "_")
        return jsonify(id=name, message=f"{error.name}: {error.description}"), status

    @flask_app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        # The route's rule, not its path: a public route's path holds its secret.
        route = request.url_rule.rule if request.url_rule is not None else "(no route)"
        flask_app.logger.error("unexpected error in %s %s", request.method, route, exc_info=error)
        message = "the API failed unexpectedly; the platform's log has the details"
        return jsonify(id="internal_server_error", message=message), 500

    return flask_app
