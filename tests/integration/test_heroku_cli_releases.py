"""Heroku's own CLI on releases, rollback and config before code, and a build's output
streamed through its output_stream_url, against one real platform: each command's output
and what it did (the app serves the code a rollback chose; the stream gives the lines while
the push still runs).

One app, `rel-shop`, built by a tiny buildpack (its compile says two lines, waiting between
them when the pushed tree asks it to) and served by python3's http.server from the slug.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from heroku_cli import HerokuCli
from platform_harness import Platform, commit, git, wait_for

from paas.domain.access import OPERATOR

pytestmark = pytest.mark.integration

APP = "rel-shop"
COMPILE = (
    'echo "-----> stream one"\n'
    'if [ -f "$1/slow" ]; then sleep 3; fi\n'  # the build is the fixture: lasts while read
    'echo "-----> stream two"'
)


@pytest.fixture(scope="module")
def cli(platform: Platform) -> HerokuCli:
    return HerokuCli(platform)


@pytest.fixture(scope="module")
def repo(platform: Platform) -> Path:
    repo = platform.base / "rel-repo"
    repo.mkdir()
    (repo / "Procfile").write_text("web: exec python3 -m http.server $PORT\n")
    git(repo, "init", "-q", "-b", "main")
    return repo


@pytest.fixture(scope="module")
def buildpack(platform: Platform) -> str:
    return platform.buildpack("streamer", {"detect": "echo streamer", "compile": COMPILE})


def releases(platform: Platform) -> list[dict[str, object]]:
    status, found = platform.request("GET", f"/apps/{APP}/releases")
    assert status == 200 and isinstance(found, list)
    return found


def push_code(platform: Platform, repo: Path, text: str) -> str:
    """Commits index.html saying `text`, pushes, and waits until the app serves it."""
    (repo / "index.html").write_text(text)
    commit(repo, text)
    pushed = platform.push(APP, repo)
    assert pushed.returncode == 0, pushed.stderr
    serving(platform, text)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def serving(platform: Platform, text: str) -> None:
    wait_for(lambda: platform.get(APP)[1].strip() == text or None, 60, f"{APP} to serve {text}")


def test_config_set_before_the_first_deploy_makes_a_release(
    platform: Platform, cli: HerokuCli, buildpack: str
) -> None:
    cli("apps:create", APP)
    done = cli("config:set", f"BUILDPACK_URL={buildpack}", "GREETING=hi", "-a", APP)
    assert "done, v1" in done.stdout + done.stderr
    (v1,) = releases(platform)
    assert (v1["version"], v1["slug"], v1["status"], v1["current"]) == (1, None, "succeeded", True)
    assert v1["description"] == "Set BUILDPACK_URL, GREETING config vars"
    again = cli("config:set", "GREETING=hello", "-a", APP)
    assert "done, v2" in again.stdout + again.stderr
    _, config = platform.request("GET", f"/apps/{APP}/config-vars")
    assert isinstance(config, dict) and config["GREETING"] == "hello"


def test_releases_show_the_users_email(platform: Platform, cli: HerokuCli, repo: Path) -> None:
    first = push_code(platform, repo, "code one")
    second = push_code(platform, repo, "code two")
    shown = cli("releases", "-a", APP).stdout.splitlines()
    assert shown[0] == f"=== {APP} Releases - Current: v4"
    rows = [line.split() for line in shown[1:] if re.match(r"\s*v\d+\s", line)]
    assert [row[0] for row in rows] == ["v4", "v3", "v2", "v1"]
    assert rows[0][1:3] == ["Deploy", second[:8]] and rows[1][1:3] == ["Deploy", first[:8]]
    assert all(OPERATOR.email in row for row in rows), shown  # who made each: the operator
    assert releases(platform)[-1]["user"] == {
        "id": releases(platform)[-1]["user"]["id"],  # type: ignore[index]
        "email": OPERATOR.email,
    }


def test_releases_info_shows_the_release_and_its_config(cli: HerokuCli) -> None:
    info = cli("releases:info", "v2", "-a", APP).stdout
    assert "=== Release v2" in info
    assert re.search(rf"^By:\s+{OPERATOR.email}$", info, re.M), info
    assert re.search(r"^Change:\s+Set GREETING config vars$", info, re.M), info
    assert "=== v2 Config vars" in info and re.search(r"^GREETING:\s+hello$", info, re.M)
    newest = cli("releases:info", "-a", APP).stdout
    assert "=== Release v4" in newest
    assert re.search(r"^Eligible for Rollback\?:\s+Yes$", newest, re.M), newest


def test_rollback_serves_the_older_code(platform: Platform, cli: HerokuCli) -> None:
    back = cli("rollback", "-a", APP)
    said = back.stdout + back.stderr
    assert f"Rolling back {APP} to v3... done, v5" in said
    serving(platform, "code one")
    newest = releases(platform)[-1]
    assert (newest["version"], newest["description"]) == (5, "Rollback to v3")
    assert newest["user"]["email"] == OPERATOR.email  # type: ignore[index]
    forward = cli("rollback", "v4", "-a", APP)
    assert f"Rolling back {APP} to v4... done, v6" in forward.stdout + forward.stderr
    serving(platform, "code two")
    refused = cli("rollback", "v1", "-a", APP, check=False)
    assert refused.returncode != 0 and "v1 of rel-shop has no code" in refused.stderr


def read_stream(url: str) -> Iterator[str]:
    """The lines of a build output stream, as they come (no token: the URL is the secret)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        assert response.status == 200, response.read()
        while line := response.readline():
            yield line.decode()
    finally:
        connection.close()


def pending_build(platform: Platform, known: int) -> dict[str, object] | None:
    _, builds = platform.request("GET", f"/apps/{APP}/builds")
    assert isinstance(builds, list)
    fresh = builds[known:]
    return fresh[0] if fresh and fresh[0]["status"] == "pending" else None


def test_a_builds_output_streams_while_the_push_runs(platform: Platform, repo: Path) -> None:
    _, before = platform.request("GET", f"/apps/{APP}/builds")
    assert isinstance(before, list)
    (repo / "slow").write_text("")
    (repo / "index.html").write_text("code three")
    commit(repo, "code three")
    push = subprocess.Popen(
        ["git", "push", platform.git_url(APP), "main"],
        cwd=repo,
        env=platform.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        build = wait_for(lambda: pending_build(platform, len(before)), 120, "the build")
        url = str(build["output_stream_url"])
        heard: list[tuple[str, bool]] = []
        for line in read_stream(url):
            heard.append((line.rstrip("\n"), push.poll() is None))
        assert push.wait(timeout=300) == 0
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
    lines = [text for text, _ in heard]
    one, two = lines.index("-----> stream one"), lines.index("-----> stream two")
    assert one < two and heard[one][1], heard  # stream one came while the push still ran
    serving(platform, "code three")
    _, done = platform.request("GET", f"/apps/{APP}/builds/{build['id']}")
    assert isinstance(done, dict) and done["status"] == "succeeded"
    assert done["user"]["email"] == OPERATOR.email
    assert done["release"] == {"id": releases(platform)[-1]["id"]}
    whole = "".join(read_stream(url))  # afterwards: the whole output at once
    assert "-----> stream one\n" in whole and "-----> stream two\n" in whole
    slug = done["slug"]["id"]
    status, shown = platform.request("GET", f"/apps/{APP}/slugs/{slug}")
    assert status == 200 and isinstance(shown, dict)
    assert shown["commit"] == done["source_blob"]["version"]
    assert shown["process_types"] == {"web": "exec python3 -m http.server $PORT"}
    assert json.dumps(shown["stack"]).count("name") == 1


def test_a_wrong_output_stream_secret_is_not_found(platform: Platform) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", platform.api_port, timeout=10)
    try:
        connection.request("GET", "/build-output/guessed")
        assert connection.getresponse().status == 404
    finally:
        connection.close()
