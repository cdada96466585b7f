"""Where the CLI finds the API address and token, and the files `paas login` writes.

Job: resolve the settings once per invocation — PAAS_API_URL / PAAS_API_TOKEN from the
environment first, then the credentials file `paas login` stored, then the token file named
by PAAS_TOKEN_FILE — and write the credentials file and the `~/.netrc` entry that lets
`git push paas main` authenticate, or answer git's credential-helper questions, so a token
is never in a command line nor in a repository's config.
Invariant: a file holding a token is written whole to a 0600 temporary file and renamed into
place, so it is never readable by others nor half-written; nothing here uses the network.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from paas.cli import client

DEFAULT_API_URL = "http://127.0.0.1:5050"
NETRC_LOGIN = "paas"


class CredentialsError(client.PaasCliError):
    """Settings are missing, unreadable or malformed."""


@dataclasses.dataclass(frozen=True)
class Settings:
    api_url: str
    token: str


def home_dir(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def credentials_path(environ: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/paas/credentials.json`, else `~/.config/paas/credentials.json`."""
    config_home = environ.get("XDG_CONFIG_HOME")
    base = Path(config_home) if config_home else home_dir(environ) / ".config"
    return base / "paas" / "credentials.json"


def netrc_path(environ: Mapping[str, str]) -> Path:
    return home_dir(environ) / ".netrc"


def normalize_api_url(url: str) -> str:
    """Check the URL is `http(s)://HOST[:PORT][/PATH]`; drop a trailing slash."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise CredentialsError(
            f"the API address {url!r} is not an http(s) URL", "e.g. http://127.0.0.1:5050"
        )
    return url.strip().rstrip("/")


def api_host(api_url: str) -> str:
    """The host name a netrc `machine` line must name for this URL (no port)."""
    return urllib.parse.urlsplit(api_url).hostname or ""


def check_token(token: str) -> str:
    """A token is one non-empty word: it goes into a netrc line and an HTTP header."""
    if not token or any(ch.isspace() for ch in token):
        raise CredentialsError("the API token must be one non-empty word without spaces")
    return token


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Resolve the API address and token; no token anywhere is an error with the fix."""
    stored = _read_stored(environ)
    from_file = _read_token_file(environ)
    api_url = (
        environ.get("PAAS_API_URL")
        or stored.get("api_url")
        or from_file.get("api_url")
        or DEFAULT_API_URL
    )
    token = environ.get("PAAS_API_TOKEN") or stored.get("token") or from_file.get("token")
    if not token:
        raise CredentialsError("no API token found", "run `paas login` or set PAAS_API_TOKEN")
    return Settings(api_url=normalize_api_url(api_url), token=check_token(token))


def git_credential_answer(question: str, settings: Settings) -> str:
    """The answer of `paas git:credentials get` to git's `key=value` lines: the token, for
    the API's own scheme and host:port only (any other host gets nothing, so a helper set
    globally never hands the token to another server)."""
    asked = dict(line.partition("=")[::2] for line in question.splitlines() if "=" in line)
    api = urllib.parse.urlsplit(settings.api_url)
    host = api.netloc.rpartition("@")[2].lower()
    if asked.get("protocol") != api.scheme or asked.get("host", "").lower() != host:
        return ""
    return f"username={NETRC_LOGIN}\npassword={settings.token}\n"


def default_api_url(environ: Mapping[str, str]) -> str:
    """The address `paas login` uses when not told: environment, stored, then default."""
    return environ.get("PAAS_API_URL") or _read_stored(environ).get("api_url") or DEFAULT_API_URL


def save_credentials(environ: Mapping[str, str], settings: Settings) -> Path:
    path = credentials_path(environ)
    text = json.dumps(dataclasses.asdict(settings), indent=2, sort_keys=True) + "\n"
    _write_private(path, text)
    return path


def save_netrc_entry(environ: Mapping[str, str], host: str, token: str) -> Path:
    """Add or replace `machine HOST login paas password TOKEN` in ~/.netrc."""
    path = netrc_path(environ)
    try:
        old = path.read_text() if path.exists() else ""
    except OSError as error:
        raise CredentialsError(f"cannot read {path}: {error.strerror}") from None
    _write_private(path, netrc_with_entry(old, host, NETRC_LOGIN, token))
    return path


def netrc_with_entry(text: str, host: str, login: str, password: str) -> str:
    """Return `text` with every `machine HOST` entry removed and one new entry appended.

    Other entries, comments and blank lines are kept as they were. An entry spans from its
    `machine` keyword to the end of the line holding its last token (a `macdef` body counts
    as part of the entry it follows).
    """
    for start, end in reversed(_machine_spans(text, host)):
        text = text[:start] + text[end:]
    if text and not text.endswith("\n"):
        text += "\n"
    return text + f"machine {host} login {login} password {password}\n"


def _machine_spans(text: str, host: str) -> list[tuple[int, int]]:
    """Character spans of the entries for `host`, in order."""
    tokens = _netrc_tokens(text)
    # Entries start at `machine` or `default`; value-taking keywords skip their value so a
    # password spelled "machine" does not start an entry.
    starts: list[tuple[int, str | None]] = []  # (token index, machine name or None)
    i = 0
    while i < len(tokens):
        word = tokens[i][2]
        if word == "machine":
            name = tokens[i + 1][2] if i + 1 < len(tokens) else ""
            starts.append((i, name))
            i += 2
        elif word == "default":
            starts.append((i, None))
            i += 1
        elif word in ("login", "password", "account", "port", "macdef"):
            i += 2
        else:
            i += 1
    spans = []
    for n, (index, machine) in enumerate(starts):
        if machine != host:
            continue
        last = (starts[n + 1][0] if n + 1 < len(starts) else len(tokens)) - 1
        end = text.find("\n", tokens[last][1])
        spans.append((tokens[index][0], len(text) if end < 0 else end + 1))
    return spans


def _netrc_tokens(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) of each netrc token; comment lines are skipped and a macdef body
    (the lines after `macdef NAME` up to a blank line) is one token."""
    tokens: list[tuple[int, int, str]] = []
    offset = 0
    macro_start: int | None = None
    for line in text.splitlines(keepends=True):
        if macro_start is not None:
            if line.strip():
                offset += len(line)
                continue
            tokens.append((macro_start, max(macro_start, offset - 1), "\0macro"))
            macro_start = None
        if not line.lstrip().startswith("#"):
            words = [
                (offset + m.start(), offset + m.end(), m.group()) for m in re.finditer(r"\S+", line)
            ]
            tokens.extend(words)
            if any(word == "macdef" for _, _, word in words):
                macro_start = offset + len(line)
        offset += len(line)
    if macro_start is not None and macro_start < len(text):
        tokens.append((macro_start, len(text) - 1, "\0macro"))
    return tokens


def _read_stored(environ: Mapping[str, str]) -> dict[str, str]:
    path = credentials_path(environ)
    if not path.exists():
        return {}
    return _read_json_settings(path)


def _read_token_file(environ: Mapping[str, str]) -> dict[str, str]:
    """PAAS_TOKEN_FILE holds either the bare token or a JSON object like credentials.json."""
    name = environ.get("PAAS_TOKEN_FILE")
    if not name:
        return {}
    path = Path(name)
    try:
        text = path.read_text()
    except OSError as error:
        raise CredentialsError(
            f"cannot read the token file {path} (PAAS_TOKEN_FILE): {error.strerror}"
        ) from None
    if text.lstrip().startswith("{"):
        return _read_json_settings(path)
    return {"token": text.strip()}


def _read_json_settings(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise CredentialsError(f"cannot read {path}: {error.strerror}") from None
    except ValueError:
        raise CredentialsError(f"{path} is not valid JSON", "run `paas login` again") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"{path} is not a JSON object", "run `paas login` again")
    return {k: v for k, v in data.items() if k in ("api_url", "token") and isinstance(v, str)}


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by the owner only."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise CredentialsError(f"cannot write {path}: {error.strerror or error}") from None
