"""One error hierarchy for the control plane.

Each error carries Heroku's error id and the HTTP status the API answers with, so every
entry point (API, hook, CLI, server) has one place that turns it into a one-line message.
"""

import shlex


class PaasError(Exception):
    """Base of every expected failure: the message is shown to the user as it is."""

    id = "bad_request"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParams(PaasError):
    id = "invalid_params"
    status = 422


class NotFound(PaasError):
    id = "not_found"
    status = 404


class Conflict(PaasError):
    id = "conflict"
    status = 409


class Unauthorized(PaasError):
    id = "unauthorized"
    status = 401


class Forbidden(PaasError):
    """The caller sees the app but holds a lower permission than the action needs."""

    id = "forbidden"
    status = 403


class BuildFailed(PaasError):
    """A build or release phase failed; the running release is untouched."""

    id = "build_failed"
    status = 422


class CommandFailed(PaasError):
    """A command the platform ran on the host failed: a non-zero exit, a time out or a
    missing program. The message names the command and the tail of its stderr; `stderr`
    holds all of it, for callers to whom some failures are an expected answer."""

    id = "command_failed"
    status = 500

    def __init__(
        self, argv: list[str], detail: str, returncode: int | None = None, stderr: str = ""
    ) -> None:
        super().__init__(f"{shlex.join(argv)} failed: {detail}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class TooManyRequests(PaasError):
    """Too many failed authentications from one address; `retry_after` in seconds."""

    id = "rate_limit"
    status = 429

    def __init__(self, message: str, retry_after: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooLarge(PaasError):
    """A request or an input is over its size limit."""

    id = "payload_too_large"
    status = 413
