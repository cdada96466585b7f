"""static.json -> an nginx config template: the static buildpack's one piece of logic.

Usage: python3 static_config.py BUILD_DIR OUTPUT_FILE — reads BUILD_DIR/static.json (if
any), writes the nginx config template to OUTPUT_FILE, prints what it set up; on bad input
prints one line naming the key and exits 1.

It runs with the stack's python3 during the build (the stack has no jq, and bash cannot
parse JSON), so it uses the standard library only and works on Python 3.11 and 3.13.

Invariant: nothing from static.json reaches the config except through a validator that
admits only characters that cannot end a quoted nginx string, escape, or name a variable
(no quote, backslash, `$`, whitespace or control character), and every such value is
written inside double quotes; anything else is refused, never escaped into meaning.
The template's @PAAS_PORT@, @PAAS_RUN@ and @PAAS_APP@ are filled in at dyno start.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 1024 * 1024
DEFAULT_ROOT = "public"
REDIRECT_CODES = (301, 302, 303, 307, 308)
KEYS = ("root", "clean_urls", "routes", "redirects", "headers", "error_page", "https_only")
# Path characters allowed in globs, paths and the root: RFC 3986's unreserved and most
# sub-delims, nothing nginx's parser or PCRE's quoting would read as more than itself.
PATH_CHARS = re.compile(r"[A-Za-z0-9/._~!()+,;=:@%*-]*")
HEADER_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")  # written unquoted: a token, and no more
# A header value or redirect URL: printable ASCII without " \ $ and without space in URLs.
VALUE_CHARS = re.compile(r"[\x20-\x7e]*")
FORBIDDEN_IN_VALUES = ('"', "\\", "$")
PLACEHOLDER = "@PAAS_"  # the start script fills these in: no value may carry one


class StaticConfigError(Exception):
    """A static.json value that is refused; its message is the one line the push shows."""


@dataclass(frozen=True)
class Redirect:
    path: str
    url: str
    status: int


@dataclass(frozen=True)
class Site:
    root: str = DEFAULT_ROOT
    clean_urls: bool = False
    routes: tuple[tuple[str, str], ...] = ()  # (glob, file under root), in the file's order
    redirects: tuple[Redirect, ...] = ()
    headers: tuple[tuple[str, str, str], ...] = ()  # (glob, header name, value)
    error_page: str | None = None
    https_only: bool = False
    unknown_keys: tuple[str, ...] = ()


def parse(text: str) -> Site:
    """static.json's text -> a validated Site (pure)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise StaticConfigError(
            f"static.json is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}): fix it or remove it"
        ) from None
    if not isinstance(raw, dict):
        raise StaticConfigError('static.json must be a JSON object, e.g. {"root": "public/"}')
    return Site(
        root=root_dir(raw.get("root", DEFAULT_ROOT)),
        clean_urls=flag(raw, "clean_urls"),
        routes=routes(raw.get("routes", {})),
        redirects=redirects(raw.get("redirects", {})),
        headers=headers(raw.get("headers", {})),
        error_page=None
        if raw.get("error_page") is None
        else file_path("error_page", raw["error_page"]),
        https_only=flag(raw, "https_only"),
        unknown_keys=tuple(k for k in raw if k not in KEYS),
    )


def flag(raw: dict[str, object], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise StaticConfigError(f"static.json: {key} must be true or false, not {shown(value)}")
    return value


def mapping(key: str, value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise StaticConfigError(f"static.json: {key} must be an object, not {shown(value)}")
    return value


def text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise StaticConfigError(f"static.json: {key} must be a string, not {shown(value)}")
    return value


def path_like(key: str, value: object, globs: bool = False) -> str:
    """A URL path or glob: starts with /, only PATH_CHARS, no `..` segment, * only in globs."""
    path = text(key, value)
    if not path.startswith("/") or not PATH_CHARS.fullmatch(path) or len(path) > 1024:
        raise StaticConfigError(
            f"static.json: {key}: {shown(path)} is not a URL path: start it with / and use "
            "only letters, digits and / . _ ~ ! ( ) + , ; = : @ % -" + (" *" if globs else "")
        )
    if PLACEHOLDER in path:
        raise StaticConfigError(f"static.json: {key}: {shown(path)} may not contain {PLACEHOLDER}")
    if ".." in path.split("/"):
        raise StaticConfigError(f"static.json: {key}: {shown(path)} may not contain a .. segment")
    if "*" in path and not globs:
        raise StaticConfigError(f"static.json: {key}: {shown(path)}: * is allowed only in globs")
    return path


def file_path(key: str, value: object) -> str:
    """A file under the root, as a URL path: `index.html` and `/index.html` alike."""
    name = text(key, value)
    return path_like(key, name if name.startswith("/") else "/" + name)


def root_dir(value: object) -> str:
    """The served directory, relative to the app: `public/`, `dist`, `.`."""
    root = text("root", value).strip("/") or "."
    if root.startswith("./"):
        root = root[2:] or "."
    path_like("root", "/" + root)
    if root != "." and "." in root.split("/"):
        raise StaticConfigError(f"static.json: root: {shown(value)} may not contain a . segment")
    return root


def routes(value: object) -> tuple[tuple[str, str], ...]:
    found = []
    for glob, target in mapping("routes", value).items():
        found.append(
            (path_like("routes", glob, globs=True), file_path(f"routes[{glob!r}]", target))
        )
    return tuple(found)


def redirects(value: object) -> tuple[Redirect, ...]:
    found = []
    for path, rule in mapping("redirects", value).items():
        key = f"redirects[{path!r}]"
        path_like("redirects", path)
        rule = mapping(key, rule)
        url = safe_value(f"{key}.url", text(f"{key}.url", rule.get("url")))
        if " " in url or not url.startswith(("/", "http://", "https://")):
            raise StaticConfigError(
                f"static.json: {key}.url: {shown(url)} must be a path (/new) or an http(s) URL "
                "without spaces"
            )
        status = rule.get("status", 301)
        if status not in REDIRECT_CODES or isinstance(status, bool):
            codes = ", ".join(map(str, REDIRECT_CODES))
            raise StaticConfigError(f"static.json: {key}.status must be one of {codes}")
        assert isinstance(status, int)
        found.append(Redirect(path, url, status))
    return tuple(found)


def headers(value: object) -> tuple[tuple[str, str, str], ...]:
    found = []
    for glob, fields in mapping("headers", value).items():
        path_like("headers", glob, globs=True)
        for name, header in mapping(f"headers[{glob!r}]", fields).items():
            key = f"headers[{glob!r}][{name!r}]"
            if not HEADER_NAME.fullmatch(name):
                raise StaticConfigError(f"static.json: {key}: not a valid header name")
            found.append((glob, name, safe_value(key, text(key, header))))
    return tuple(found)


def safe_value(key: str, value: str) -> str:
    if not VALUE_CHARS.fullmatch(value) or any(c in value for c in FORBIDDEN_IN_VALUES):
        raise StaticConfigError(
            f"static.json: {key}: {shown(value)} may hold only printable ASCII without "
            '" \\ or $ (nginx would read them as syntax)'
        )
    if PLACEHOLDER in value:
        raise StaticConfigError(f"static.json: {key}: {shown(value)} may not contain {PLACEHOLDER}")
    if len(value) > 4096:
        raise StaticConfigError(f"static.json: {key} is longer than 4096 characters")
    return value


def shown(value: object) -> str:
    """A value as an error shows it: JSON, cut short, control characters escaped."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def glob_regex(glob: str) -> str:
    """A glob -> an anchored PCRE pattern: ** any characters, * any within one segment."""
    parts = []
    for piece in re.split(r"(\*\*|\*)", glob):
        if piece == "**":
            parts.append(".*")
        elif piece == "*":
            parts.append("[^/]*")
        else:
            # Every non-alphanumeric is escaped: a literal to PCRE, and \ followed by one of
            # PATH_CHARS is kept as it is inside an nginx quoted string.
            parts.append("".join(c if c.isalnum() else "\\" + c for c in piece))
    return "^" + "".join(parts)


def quoted(value: str) -> str:
    """A validated value in double quotes (validation left nothing to escape)."""
    assert not any(c in value for c in (*FORBIDDEN_IN_VALUES, "\n", "\r"))
    return f'"{value}"'


def quoted_pattern(glob: str, before: str = "", after: str = "$") -> str:
    """A glob's PCRE in double quotes: its backslashes precede only PATH_CHARS, which an
    nginx quoted string keeps as they are, and its $ is an anchor, not a variable."""
    return f'"{before}{glob_regex(glob)}{after}"'


def render(site: Site) -> str:
    """The nginx config template for a Site (pure)."""
    names = list(dict.fromkeys(name.lower() for _, name, _ in site.headers))
    maps = [header_map(site, index, name) for index, name in enumerate(names)]
    fallback = "$uri $uri.html" if site.clean_urls else "$uri"
    root = "@PAAS_APP@" if site.root == "." else f"@PAAS_APP@/{site.root}"
    server = [
        "listen @PAAS_PORT@;",
        f"root {quoted(root)};",
        "index index.html;",
        "absolute_redirect off;  # the dyno's port is not the router's",
        "server_tokens off;",
    ]
    if site.error_page:
        server.append(f"error_page 404 {quoted(site.error_page)};")
    header_names = {name.lower(): name for _, name, _ in site.headers}
    for index, name in enumerate(names):
        server.append(f"add_header {header_names[name]} $paas_header_{index};")
    server.append("location ^~ /.paas/ { return 404; }  # the buildpack's own files")
    for redirect in site.redirects:
        answer = f"return {redirect.status} {quoted(redirect.url)};"
        server.append(f"location = {quoted(redirect.path)} {{ {answer} }}")
    for glob, target in site.routes:
        pattern = quoted_pattern(glob)
        server.append(f"location ~ {pattern} {{ try_files {fallback} {quoted(target)}; }}")
    server.append(f"location / {{ try_files {fallback} $uri/ =404; }}")
    lines = [
        "# Written by the static buildpack from static.json at build time; the @PAAS_...@",
        "# placeholders are filled in at dyno start (.paas/static/start).",
        "daemon off;",
        "worker_processes 1;",
        "pid @PAAS_RUN@/nginx.pid;",
        "error_log stderr;",
        "events { worker_connections 1024; }",
        "http {",
        "    include /etc/nginx/mime.types;",
        "    default_type application/octet-stream;",
        # An empty name is nginx's own stderr, the dyno's log; /dev/stdout is a pipe that
        # the dyno's user may not reopen (the supervisor, another uid, made it).
        '    access_log "";',
        "    sendfile on;",
        *(f"    {kind}_temp_path @PAAS_RUN@/{kind};" for kind in TEMP_PATHS),
        *("    " + line for block in maps for line in block),
        "    server {",
        *("        " + line for line in server),
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def header_map(site: Site, index: int, name: str) -> list[str]:
    """One header's value by request path: the first glob that matches wins; empty (no
    header sent) when none does. Matched on $request_uri, the path the client asked for,
    which a try_files or error_page rewrite does not change."""
    lines = [f"map $request_uri $paas_header_{index} {{", '    default "";']
    for glob, header, value in site.headers:
        if header.lower() == name:
            pattern = quoted_pattern(glob, before="~", after=r"(\?.*)?$")
            lines.append(f"    {pattern} {quoted(value)};")
    lines.append("}")
    return lines


def check_files(site: Site, build_dir: Path) -> None:
    """The root is a directory inside the app; the route targets and the error page exist."""
    app = build_dir.resolve()
    root = (build_dir / site.root).resolve()
    if not root.is_dir() or not (root == app or app in root.parents):
        raise StaticConfigError(
            f"static.json: root: {site.root}/ is not a directory of the app: create it, or "
            'set "root" to the directory holding index.html'
        )
    wanted: list[tuple[str, str]] = [(f"routes[{g!r}]", t) for g, t in site.routes]
    if site.error_page:
        wanted.append(("error_page", site.error_page))
    for key, target in wanted:
        if not (root / target.lstrip("/")).is_file():
            raise StaticConfigError(
                f"static.json: {key}: {target} is not a file under {site.root}/: add it or "
                "fix the path"
            )


def describe(site: Site, say: Callable[[str], None]) -> None:
    say(f"Serving {site.root}/ with nginx")
    if site.clean_urls:
        say("clean_urls: /about serves about.html")
    for glob, target in site.routes:
        say(f"route {glob} -> {target}")
    for redirect in site.redirects:
        say(f"redirect {redirect.path} -> {redirect.url} ({redirect.status})")
    for glob, name, _ in site.headers:
        say(f"header {name} on {glob}")
    if site.error_page:
        say(f"error_page: {site.error_page} for 404")
    if site.https_only:
        say("https_only: no effect yet: the router serves plain HTTP only (no TLS)")
    if site.unknown_keys:
        say(f"ignored: {', '.join(site.unknown_keys)} (supported keys: {', '.join(KEYS)})")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("Usage: static_config.py BUILD_DIR OUTPUT_FILE", file=sys.stderr)
        return 2
    build_dir, output = Path(argv[1]), Path(argv[2])
    config = build_dir / "static.json"
    try:
        if config.is_symlink() or (config.exists() and not config.is_file()):
            raise StaticConfigError("static.json must be a regular file, not a link or directory")
        if config.is_file() and config.stat().st_size > MAX_BYTES:
            raise StaticConfigError(f"static.json is larger than {MAX_BYTES // 1024} kB")
        site = parse(config.read_text(errors="replace")) if config.is_file() else Site()
        check_files(site, build_dir)
    except StaticConfigError as error:
        print(f" !     {error}", file=sys.stderr)
        return 1
    describe(site, lambda line: print(f"       {line}"))
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    tmp.write_text(render(site))
    os.replace(tmp, output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
