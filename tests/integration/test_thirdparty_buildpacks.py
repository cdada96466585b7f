"""Third-party buildpacks the way Heroku takes them, through real `git push`es: a git URL
at a tag (fetched once, then from the cache), a `.tgz` served by a local HTTP server,
a multi-buildpack app (`.buildpacks`, an `export` file, the last bin/release), the
`paas buildpacks:*` commands ahead of BUILDPACK_URL, and hostile archives refused with
one line while the running release keeps serving.

The tests share one platform whose allow-list holds BASE/buildpacks/ (file://) and the
test's HTTP server on 127.0.0.1; each test uses its own app. Buildpack fixtures are made
here.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nodeapps
import pytest
from platform_harness import Platform, commit, free_port, git, wait_for

WEB_COMMAND = "exec python3 -m http.server $PORT"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1 (stopped by pid), and its URL."""
    root = Path(tempfile.mkdtemp(prefix="paas-bp-http-"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        (root / "ready").write_text("yes")
        wait_for(lambda: _http_get(url + "ready") == b"yes", 30, "the HTTP server")
        yield root, url
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def platform(served: tuple[Path, str]) -> Iterator[Platform]:
    platform = Platform(PAAS_BUILDPACK_MAX_MB="1")
    platform.env["PAAS_BUILDPACK_SOURCES"] += f",{served[1]}"
    try:
        platform.start()
        yield platform
    finally:
        platform.stop()


def _http_get(url: str) -> bytes | None:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as answer:
        data: bytes = answer.read()
        return data


def app_repo(platform: Platform, name: str, files: dict[str, str]) -> Path:
    repo = platform.base / f"{name}-repo"
    repo.mkdir()
    for path, text in files.items():
        (repo / path).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, name)
    return repo


def head(repo: Path) -> str:
    found = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


def page(platform: Platform, app: str, path: str = "/") -> str:
    status, body = wait_for(
        lambda: (lambda got: got if got[0] == 200 else None)(platform.get(app, path)),
        30,
        f"{app}{path} to answer",
    )
    assert status == 200
    return body


def pushed(platform: Platform, app: str, repo: Path) -> str:
    push = platform.push(app, repo)
    assert push.returncode == 0, push.stderr
    return push.stderr


def rejected(push: subprocess.CompletedProcess[str], reason: str) -> None:
    assert push.returncode != 0, push.stderr
    lines = [line for line in push.stderr.splitlines() if "Push rejected:" in line]
    assert len(lines) == 1 and reason in lines[0], push.stderr


def tgz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as archive:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return data.getvalue()


def script(name: str, text: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = 0o755
    return info, f"#!/bin/sh\n{text}\n".encode()


def archive_buildpack(
    top: str = "", extra: list[tuple[tarfile.TarInfo, bytes | None]] | None = None
) -> bytes:
    """A buildpack whose compile writes index.html saying it came from an archive."""
    return tgz(
        [
            script(f"{top}bin/detect", "echo Archived"),
            script(f"{top}bin/compile", 'echo "built from an archive" > "$1/index.html"'),
            *(extra or []),
        ]
    )


def test_a_git_buildpack_at_a_tag_builds_and_is_cached(platform: Platform) -> None:
    """A file:// git URL with #tag is fetched by the push (so the hook's git quarantine
    no longer leaks into the clone); the second push uses the cache: it still builds
    with the source repository gone."""
    url = platform.buildpack(
        "tagged",
        {"detect": "echo Tagged", "compile": 'echo "built at v1" > "$1/index.html"'},
    )
    source = Path(url.removeprefix("file://"))
    git(source, "tag", "v1")
    # A later commit on the branch: the tag, not the branch's head, is what builds.
    (source / "bin" / "compile").write_text('#!/bin/sh\necho "built at main" > "$1/index.html"\n')
    commit(source, "after v1")
    platform.paas("apps:create", "tagged", "--no-remote")
    platform.paas("config:set", f"BUILDPACK_URL={url}#v1", "-a", "tagged")
    repo = app_repo(platform, "tagged", {"Procfile": f"web: {WEB_COMMAND}\n"})
    first = pushed(platform, "tagged", repo)
    assert f"Fetching buildpack {url}#v1" in first and "Tagged app detected" in first
    assert "built at v1" in page(platform, "tagged")

    shutil.rmtree(source)  # a second fetch would fail now
    (repo / "README").write_text("second push\n")
    commit(repo, "second")
    second = pushed(platform, "tagged", repo)
    assert f"Using buildpack {url}#v1 (cached)" in second
    assert "Fetching buildpack" not in second


def test_a_branch_is_fetched_again_by_every_build(platform: Platform) -> None:
    url = platform.buildpack(
        "moving", {"detect": "echo Moving", "compile": 'echo "first" > "$1/index.html"'}
    )
    platform.paas("apps:create", "moving", "--no-remote")
    platform.paas("config:set", f"BUILDPACK_URL={url}#main", "-a", "moving")
    repo = app_repo(platform, "moving", {"Procfile": f"web: {WEB_COMMAND}\n"})
    pushed(platform, "moving", repo)
    assert "first" in page(platform, "moving")
    source = Path(url.removeprefix("file://"))
    (source / "bin" / "compile").write_text('#!/bin/sh\necho "second" > "$1/index.html"\n')
    commit(source, "moved")
    (repo / "README").write_text("again\n")
    commit(repo, "again")
    assert f"Fetching buildpack {url}#main" in pushed(platform, "moving", repo)
    wait_for(lambda: "second" in platform.get("moving")[1], 30, "the moved branch's build")


def test_a_tgz_buildpack_from_a_local_http_server(
    platform: Platform, served: tuple[Path, str]
) -> None:
    root, base = served
    # GitHub's archives hold one top directory: the buildpack is inside it.
    (root / "archived.tgz").write_bytes(archive_buildpack("archived-1.0/"))
    platform.paas("apps:create", "archived", "--no-remote")
    platform.paas("buildpacks:set", f"{base}archived.tgz", "-a", "archived")
    repo = app_repo(platform, "archived", {"Procfile": f"web: {WEB_COMMAND}\n"})
    output = pushed(platform, "archived", repo)
    assert f"Fetching buildpack {base}archived.tgz" in output and "Archived app detected" in output
    assert "built from an archive" in page(platform, "archived")


EXPORTER = {
    "detect": "echo Exporter",
    "compile": 'echo "export GREETING=hello-from-the-first" > "$(dirname "$0")/../export"',
}
LAST_RELEASE = """cat <<'YAML'
---
default_process_types:
  web: echo "$FOO-$BAR" > config.txt && exec python3 -m http.server $PORT
config_vars:
  FOO: from-release
  BAR: release-default
YAML"""
LAST_COMPILE = """echo "$GREETING" > "$1/greeting.txt"
[ "$BUILD_DIR" = "$1" ] && echo "$STACK $SOURCE_VERSION" > "$1/env.txt"
"""


def test_a_multi_buildpack_app_by_dot_buildpacks(platform: Platform) -> None:
    first = platform.buildpack("exporter", EXPORTER)
    second = platform.buildpack(
        "last", {"detect": "echo Last", "compile": LAST_COMPILE, "release": LAST_RELEASE}
    )
    platform.paas("apps:create", "multi", "--no-remote")
    platform.paas("config:set", "BAR=set-by-the-app", "-a", "multi")
    # The release phase sees the defaults too (.profile.d is sourced there as in dynos).
    files = {
        ".buildpacks": f"{first}\n{second}\n",
        "Procfile": 'release: test "$FOO" = from-release\n',
    }
    repo = app_repo(platform, "multi", files)
    output = pushed(platform, "multi", repo)
    assert "Exporter app detected" in output and "Last app detected" in output
    assert "Default config vars from bin/release" in output
    assert page(platform, "multi", "/greeting.txt").strip() == "hello-from-the-first"
    stack, version = page(platform, "multi", "/env.txt").split()
    assert version == head(repo) and stack
    # config_vars are defaults: BAR, set by the app, keeps the app's value.
    assert page(platform, "multi", "/config.txt").strip() == "from-release-set-by-the-app"


def test_an_exporting_buildpack_then_the_node_one(platform: Platform) -> None:
    """The issue's multi-buildpack app: the first buildpack's `export` reaches the Node.js
    buildpack's build script, and the last buildpack's bin/release (Node's `npm start`)
    is the web process."""
    first = platform.buildpack("exporter-for-node", EXPORTER)
    platform.paas("apps:create", "multinode", "--no-remote")
    repo = nodeapps.write_app(platform.base, "multinode-repo", "npm")
    (repo / "build.js").write_text(
        "require('fs').writeFileSync('built.txt', process.env.GREETING + "
        "require('left-pad')('!', 3, '-'))\n"
    )
    (repo / ".buildpacks").write_text(f"{first}\nheroku/nodejs\n")
    commit(repo, "two buildpacks")
    output = pushed(platform, "multinode", repo)
    assert "Exporter app detected" in output and "Node.js app detected" in output
    seen = json.loads(page(platform, "multinode"))
    assert seen["built"] == "hello-from-the-first--!"
    assert seen["dev"] == "absent" and seen["env"] == "production"


def test_app_json_buildpacks_are_used_without_other_sources(platform: Platform) -> None:
    url = platform.buildpack(
        "manifest", {"detect": "echo Manifest", "compile": 'echo manifest > "$1/index.html"'}
    )
    platform.paas("apps:create", "manifest", "--no-remote")
    manifest = json.dumps({"buildpacks": [{"url": url}]})
    repo = app_repo(
        platform, "manifest", {"app.json": manifest, "Procfile": f"web: {WEB_COMMAND}\n"}
    )
    assert "Manifest app detected" in pushed(platform, "manifest", repo)
    assert "manifest" in page(platform, "manifest")


def names(platform: Platform, app: str) -> list[str]:
    listed = json.loads(platform.paas("buildpacks", "-a", app, "--json").stdout)
    return [item["buildpack"]["url"] for item in listed]


def test_buildpacks_commands_and_their_precedence_over_buildpack_url(platform: Platform) -> None:
    from_config = platform.buildpack(
        "from-config", {"detect": "echo FromConfig", "compile": 'echo config > "$1/index.html"'}
    )
    stored = platform.buildpack(
        "stored", {"detect": "echo Stored", "compile": 'echo stored > "$1/index.html"'}
    )
    other = platform.buildpack("other", {"detect": "echo Other", "compile": "true"})
    app = "precedence"
    platform.paas("apps:create", app, "--no-remote")
    platform.paas("config:set", f"BUILDPACK_URL={from_config}", "-a", app)
    assert "has no buildpacks set" in platform.paas("buildpacks", "-a", app).stdout

    platform.paas("buildpacks:set", stored, "-a", app)
    platform.paas("buildpacks:add", other, "-a", app)
    platform.paas("buildpacks:add", "--index", "1", "heroku/python", "-a", app)
    assert names(platform, app) == ["heroku/python", stored, other]
    platform.paas("buildpacks:remove", "--index", "1", "-a", app)
    platform.paas("buildpacks:set", "--index", "2", stored, "-a", app)
    assert names(platform, app) == [stored, stored]
    platform.paas("buildpacks:remove", stored, "-a", app)
    listing = platform.paas("buildpacks", "-a", app).stdout
    assert f"1. {stored}" in listing

    # A bad URL is refused at set time, in one line, and nothing is stored.
    bad = platform.paas("buildpacks:add", "file:///etc/", "-a", app, check=False)
    assert bad.returncode != 0 and "is not allowed here" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = platform.paas("buildpacks:set", "heroku/nope", "-a", app, check=False)
    assert missing.returncode != 0 and "choose one of heroku/" in missing.stderr
    assert names(platform, app) == [stored]
    status, answer = platform.request_json(
        "PUT",
        f"/apps/{app}/buildpack-installations",
        {"updates": [{"buildpack": other}, {"buildpack": "/root"}]},
    )
    assert status == 422 and "a local path is never a buildpack source" in str(answer)
    assert names(platform, app) == [stored]

    repo = app_repo(platform, app, {"Procfile": f"web: {WEB_COMMAND}\n"})
    assert "Stored app detected" in pushed(platform, app, repo)
    assert "stored" in page(platform, app)

    platform.paas("buildpacks:clear", "-a", app)
    assert names(platform, app) == []
    (repo / "README").write_text("after clear\n")
    commit(repo, "after clear")
    assert "FromConfig app detected" in pushed(platform, app, repo)
    wait_for(lambda: "config" in platform.get(app)[1], 30, "the BUILDPACK_URL build")


def hostile_archives() -> dict[str, tuple[bytes, str]]:
    def entry(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        return info, None

    escape = tarfile.TarInfo("../escaped.txt")
    return {
        "traversal": (archive_buildpack(extra=[(escape, b"x")]), "has a `..` or empty path"),
        "absolute": (
            archive_buildpack(extra=[(tarfile.TarInfo("/tmp/abs.txt"), b"x")]),
            "has an absolute path",
        ),
        "symlink": (
            archive_buildpack(extra=[entry("bin/up", tarfile.SYMTYPE, "../../..")]),
            "symlink 'bin/up' points outside the archive",
        ),
        "chained": (
            archive_buildpack(
                extra=[
                    entry("a/b/up", tarfile.SYMTYPE, "../.."),
                    entry("a/b/out", tarfile.SYMTYPE, "up/.."),
                ]
            ),
            "symlink 'a/b/out' points outside the archive",
        ),
        "hardlink": (
            archive_buildpack(extra=[entry("bin/shadow", tarfile.LNKTYPE, "/etc/shadow")]),
            "hard link 'bin/shadow' points outside the archive",
        ),
        "device": (
            archive_buildpack(extra=[entry("bin/null", tarfile.CHRTYPE)]),
            "member 'bin/null' is a device",
        ),
        "oversize": (
            archive_buildpack(extra=[(tarfile.TarInfo("big"), os.urandom(1_200_000))]),
            "it is larger than 1 MB (PAAS_BUILDPACK_MAX_MB)",
        ),
    }


def test_hostile_archives_are_refused_and_the_release_keeps_serving(
    platform: Platform, served: tuple[Path, str]
) -> None:
    root, base = served
    (root / "good.tgz").write_bytes(archive_buildpack())
    app = "hostile"
    platform.paas("apps:create", app, "--no-remote")
    platform.paas("buildpacks:set", f"{base}good.tgz", "-a", app)
    repo = app_repo(platform, app, {"Procfile": f"web: {WEB_COMMAND}\n"})
    pushed(platform, app, repo)
    releases = platform.paas("releases", "-a", app, "--json").stdout
    for name, (data, reason) in hostile_archives().items():
        (root / f"{name}.tgz").write_bytes(data)
        platform.paas("buildpacks:set", f"{base}{name}.tgz", "-a", app)
        (repo / "README").write_text(name)
        commit(repo, name)
        rejected(platform.push(app, repo), reason)
        assert "built from an archive" in page(platform, app)
    assert platform.paas("releases", "-a", app, "--json").stdout == releases
    assert not Path("/tmp/abs.txt").exists()
    assert not (platform.base / "home" / "builds" / "escaped.txt").exists()
