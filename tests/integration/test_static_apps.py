"""Static sites and Procfile-only apps, end to end: real git pushes of apps these tests
write, built by the built-in static and procfile buildpacks, served through the router
(the static ones by the stack's nginx in the dyno, as the dyno's user).

The tests share one platform and run in order (the injection test pushes over the first
static site).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
from pathlib import Path

from platform_harness import Platform, commit, git, wait_for

SITE = "static-site"
STATIC_JSON = {
    "root": "public/",
    "clean_urls": True,
    "routes": {"/app/**": "index.html"},
    "redirects": {"/old": {"url": "/new", "status": 301}},
    "headers": {"/assets/**": {"Cache-Control": "public, max-age=60"}},
    "error_page": "404.html",
}
SITE_FILES = {
    "static.json": json.dumps(STATIC_JSON),
    "public/index.html": "<h1>static home</h1>\n",
    "public/about.html": "<h1>about us</h1>\n",
    "public/404.html": "<h1>custom not found</h1>\n",
    "public/assets/app.js": "console.log('hi');\n",
}


def write_repo(platform: Platform, name: str, files: dict[str, str]) -> Path:
    repo = platform.base / name
    if repo.exists():
        shutil.rmtree(repo)
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, name)
    return repo


def fetch(platform: Platform, app: str, path: str) -> tuple[int, dict[str, str], str]:
    """One GET through the router: status, headers (lower-case names), body."""
    connection = http.client.HTTPConnection("127.0.0.1", platform.http_port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": f"{app}.paas.localhost"})
        response = connection.getresponse()
        found = {k.lower(): v for k, v in response.getheaders()}
        return response.status, found, response.read().decode()
    finally:
        connection.close()


def deploy(platform: Platform, app: str, files: dict[str, str], detected: str) -> None:
    platform.paas("apps:create", app, "--no-remote")
    result = platform.push(app, write_repo(platform, f"{app}-repo", files))
    assert result.returncode == 0, result.stderr
    assert f"remote: -----> {detected} app detected" in result.stderr
    wait_for(lambda: fetch(platform, app, "/")[0] == 200, 60, f"{app} to serve")


def test_static_site_serves_clean_urls_redirects_headers_and_its_404(platform: Platform) -> None:
    deploy(platform, SITE, SITE_FILES, "Static")
    assert fetch(platform, SITE, "/")[2] == "<h1>static home</h1>\n"
    assert fetch(platform, SITE, "/about")[::2] == (200, "<h1>about us</h1>\n")
    status, headers, _ = fetch(platform, SITE, "/old")
    assert (status, headers["location"]) == (301, "/new")
    status, headers, _ = fetch(platform, SITE, "/assets/app.js")
    assert (status, headers["cache-control"]) == (200, "public, max-age=60")
    assert "javascript" in headers["content-type"]
    assert "cache-control" not in fetch(platform, SITE, "/about")[1]
    assert fetch(platform, SITE, "/app/some/client/route")[::2] == (200, "<h1>static home</h1>\n")
    assert fetch(platform, SITE, "/no/such/page")[::2] == (404, "<h1>custom not found</h1>\n")
    assert fetch(platform, SITE, "/.paas/static/start")[0] == 404  # the buildpack's files


def process_tree(root: int) -> list[int]:
    """`root` and every process below it, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def uid_and_name(pid: int) -> tuple[int, str]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    return int(fields["Uid"].split()[0]), fields["Name"].strip()


def test_nginx_runs_as_the_dyno_user_and_logs_requests(platform: Platform) -> None:
    (dyno,) = platform.dyno_statuses(SITE)
    assert isinstance(dyno["pid"], int)
    nginx = [p for p in process_tree(dyno["pid"]) if uid_and_name(p)[1] == "nginx"]
    assert len(nginx) == 2, dyno  # the master and its one worker
    uids = {uid_and_name(p)[0] for p in nginx}
    if os.geteuid() == 0:  # the app's own unprivileged uid
        assert len(uids) == 1 and 0 not in uids
    else:
        assert uids == {os.geteuid()}
    fetch(platform, SITE, "/about")
    wait_for(
        lambda: '"GET /about HTTP/1.1" 200' in platform.paas("logs", "-a", SITE).stdout,
        30,
        "nginx's access log line in the app's logs",
    )


def test_a_public_index_html_alone_is_a_static_site(platform: Platform) -> None:
    deploy(platform, "public-only", {"public/index.html": "just public\n"}, "Static")
    assert fetch(platform, "public-only", "/")[::2] == (200, "just public\n")
    assert fetch(platform, "public-only", "/missing")[0] == 404


def test_static_json_injecting_nginx_directives_is_refused_and_changes_nothing(
    platform: Platform,
) -> None:
    releases = platform.paas("releases", "-a", SITE, "--json").stdout
    evil = {**STATIC_JSON, "headers": {"/**": {"X-Evil": 'a"; } server { listen 1; } #'}}}
    repo = platform.base / f"{SITE}-repo"
    (repo / "static.json").write_text(json.dumps(evil))
    commit(repo, "a header value that closes its quote and opens a server block")
    result = platform.push(SITE, repo)
    assert result.returncode != 0
    refused = [line for line in result.stderr.splitlines() if "static.json:" in line]
    assert len(refused) == 1, result.stderr
    assert "headers['/**']['X-Evil']" in refused[0]
    assert "may hold only printable ASCII without" in refused[0]
    assert "the static buildpack failed to compile" in result.stderr
    assert platform.paas("releases", "-a", SITE, "--json").stdout == releases
    assert fetch(platform, SITE, "/about")[::2] == (200, "<h1>about us</h1>\n")
    assert "x-evil" not in fetch(platform, SITE, "/")[1]


def test_a_procfile_only_app_runs_on_the_stacks_tools(platform: Platform) -> None:
    files = {
        "Procfile": "web: python3 -m http.server $PORT\n",
        "index.html": "served by the stack's python3\n",
    }
    deploy(platform, "procfile-only", files, "Procfile")
    assert fetch(platform, "procfile-only", "/")[::2] == (200, "served by the stack's python3\n")
