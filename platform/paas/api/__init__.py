"""The HTTP API: a Flask application factory, one blueprint per resource.

Every route needs a valid token (Bearer for the API, HTTP Basic password for git). Errors
leave as JSON `{"id": ..., "message": ...}` with Heroku's ids, from one handler.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

from paas import settings as settings_module
from paas.api import apps, auth, dynos, git, releases
from paas.api.context import Context
from paas.errors import PaasError, TooManyRequests
from paas.logs import LogStore
from paas.settings import Settings
from paas.store import Store


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or settings_module.from_env()
    flask_app = Flask("paas")
    flask_app.extensions["paas"] = Context(
        settings, Store(settings.db_path), LogStore(settings.logs_db_path)
    )
    flask_app.before_request(auth.require_token)
    for blueprint in (apps.blueprint, dynos.blueprint, releases.blueprint, git.blueprint):
        flask_app.register_blueprint(blueprint)

    @flask_app.errorhandler(PaasError)
    def paas_error(error: PaasError) -> tuple[Response, int]:
        response = jsonify(id=error.id, message=error.message)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="paas"'
        if isinstance(error, TooManyRequests):
            response.headers["Retry-After"] = error.retry_after
        return response, error.status

    @flask_app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[Response, int]:
        return jsonify(id="not_found", message="no such API endpoint"), 404

    @flask_app.errorhandler(405)
    def bad_method(_error: Exception) -> tuple[Response, int]:
        return jsonify(id="bad_request", message="method not allowed on this endpoint"), 405

    return flask_app
