"""The shared runtime store (paas.artifacts.runtimes) through real `git push`es of Node
apps: Node.js is stored once per host and mounted read-only into the dynos whose slug
names it, never copied into their slugs; dynos cannot write it and see no other runtime;
the exported image holds it as a layer of its own; the collector keeps what a kept
release names and removes the rest; a hand-deleted entry is a clear error. One platform
serves the whole module; the tests run in order (later ones use the apps of the first).
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import nodeapps
import pytest
from platform_harness import Platform, commit, wait_for

from paas.artifacts import runtimes, stacks

STACK = stacks.rootfs(stacks.DEFAULT_STACK) if os.geteuid() == 0 else None
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(STACK is None, reason="needs root and a built stack (Node runs there)"),
]
FIRST, SECOND = "rt-first", "rt-second"
# The server also reports what it sees of the store, and whether it can change its Node.js.
PROBE = (
    'let write = "written"; try { fs.writeFileSync(process.env.HOME + '
    '"/.heroku/node/bin/node", "x"); } catch (e) { write = e.code; }\n'
    'let seen = ""; try { seen = fs.readdirSync("/opt/paas/runtimes").join(","); }'
    " catch (e) { seen = e.code; }\n"
)
UNUSED = f"nodejs-1.0.0-{'0' * 64}"  # an entry no release names


def server_js(message: str) -> str:
    text = nodeapps.server_js(message).replace('let dev = "absent";', PROBE + 'let dev = "absent";')
    return text.replace("env: process.env.NODE_ENV}", "env: process.env.NODE_ENV, write, seen}")


def store(platform: Platform) -> Path:
    return platform.home / "runtimes"


def entries(platform: Platform) -> list[str]:
    return sorted(p.name for p in store(platform).iterdir() if runtimes.NAME.fullmatch(p.name))


def page(platform: Platform, app: str, message: str) -> dict[str, str]:
    def shown() -> dict[str, str] | None:
        body = platform.get_json(app)
        return body if body and body.get("message") == message else None

    return wait_for(shown, 60, f"{app} to serve {message}")


def push(platform: Platform, app: str, repo: Path) -> str:
    result = platform.push(app, repo)
    assert result.returncode == 0, result.stderr
    return result.stderr


def current_slug(platform: Platform, app: str) -> Path:
    listed = json.loads(platform.paas("releases", "-a", app, "--json").stdout)
    current = max(listed, key=lambda r: r["version"])
    digest: str = current["artifact"]
    return platform.home / "slugs" / digest.removeprefix("sha256:")


def test_two_apps_on_the_same_node_share_one_store_entry(platform: Platform) -> None:
    for app in (FIRST, SECOND):
        platform.paas("apps:create", app, "--no-remote")
        repo = nodeapps.write_app(platform.base, app, "npm", engines="24.x")
        (repo / "server.js").write_text(server_js("cold"))
        commit(repo, "probing server")
        push(platform, app, repo)
        page(platform, app, "cold")
    # The first app's cold build made the entry (its own slug has a copy); the second
    # found it, as does the first one's next push.
    [name] = entries(platform)
    repo = platform.base / FIRST
    (repo / "server.js").write_text(server_js("warm"))
    commit(repo, "warm")
    assert "the platform's shared copy" in push(platform, FIRST, repo)
    page(platform, FIRST, "warm")
    assert entries(platform) == [name]
    for app in (FIRST, SECOND):
        slug = current_slug(platform, app)
        assert os.readlink(slug / ".heroku/node") == f"/opt/paas/runtimes/{name}"
        assert runtimes.slug_runtimes(slug) == [name]
    node = store(platform) / name / "bin" / "node"
    assert node.stat().st_uid == 0 and node.stat().st_mode & 0o022 == 0


def test_a_dyno_cannot_write_its_runtime_and_sees_no_other(platform: Platform) -> None:
    [name] = entries(platform)
    node = store(platform) / name / "bin" / "node"
    size = node.stat().st_size
    (store(platform) / UNUSED / "bin").mkdir(parents=True)  # another runtime on the host
    repo = platform.base / SECOND
    (repo / "server.js").write_text(server_js("probe"))
    commit(repo, "probe")
    push(platform, SECOND, repo)
    body = page(platform, SECOND, "probe")
    assert body["write"] == "EROFS"
    assert body["seen"] == name  # not UNUSED: only what its release names
    assert node.stat().st_size == size


def test_the_exported_image_holds_the_runtime_as_a_shared_layer(platform: Platform) -> None:
    [name] = [n for n in entries(platform) if n != UNUSED]
    layers = {}
    for app in (FIRST, SECOND):
        archive = platform.base / f"{app}.tar"
        platform.paas("images:export", "-a", app, "-o", str(archive))
        with tarfile.open(archive) as image:
            index = json.load(image.extractfile("index.json"))  # type: ignore[arg-type]
            blob = index["manifests"][0]["digest"].removeprefix("sha256:")
            manifest = json.load(image.extractfile(f"blobs/sha256/{blob}"))  # type: ignore[arg-type]
            digests = [layer["digest"].removeprefix("sha256:") for layer in manifest["layers"]]
            assert len(digests) == 3  # the stack, the runtime, the app
            runtime = image.extractfile(f"blobs/sha256/{digests[1]}")
            assert runtime is not None
            with tarfile.open(fileobj=runtime) as layer:
                names = layer.getnames()
            assert f"opt/paas/runtimes/{name}/bin/node" in names
            app_layer = image.extractfile(f"blobs/sha256/{digests[2]}")
            assert app_layer is not None
            with tarfile.open(fileobj=app_layer) as layer:
                link = layer.getmember("app/.heroku/node")
            assert link.issym() and link.linkname == f"/opt/paas/runtimes/{name}"
        layers[app] = digests[1]
    assert layers[FIRST] == layers[SECOND]


def test_retention_keeps_a_runtime_a_kept_release_names_and_removes_the_rest(
    platform: Platform,
) -> None:
    [name] = [n for n in entries(platform) if n != UNUSED]
    long_ago = time.time() - 2 * runtimes.UNUSED_SECONDS
    for entry in (name, UNUSED):
        os.utime(store(platform) / entry, (long_ago, long_ago))
    # Destroying an app runs the collector, with no push in flight to pin anything.
    platform.paas("apps:create", "rt-gone", "--no-remote")
    platform.paas("apps:destroy", "-a", "rt-gone", "--confirm", "rt-gone")
    assert entries(platform) == [name]
    # Rolling back to the release before keeps working: it names the same runtime.
    platform.paas("rollback", "-a", SECOND)
    page(platform, SECOND, "cold")


def test_a_runtime_deleted_by_hand_is_a_clear_error_and_a_push_makes_it_again(
    platform: Platform,
) -> None:
    [name] = entries(platform)
    subprocess.run(["rm", "-rf", str(store(platform) / name)], check=True, timeout=60)
    platform.paas("ps:restart", "-a", FIRST)

    def said() -> str | None:
        logs = platform.paas("logs", "-a", FIRST, "-n", "200").stdout
        return logs if f"runtime {name}" in logs else None

    logs = wait_for(said, 60, "the missing runtime to be said in the app's log")
    assert "push the app again" in logs
    repo = platform.base / FIRST
    (repo / "server.js").write_text(server_js("again"))
    commit(repo, "again")
    push(platform, FIRST, repo)
    page(platform, FIRST, "again")
    assert entries(platform) == [name]


def test_a_build_naming_a_runtime_the_host_lacks_is_refused(platform: Platform) -> None:
    platform.paas("apps:create", "rt-named", "--no-remote")
    repo = platform.new_repo("rt-named")
    (repo / ".paas").mkdir()
    (repo / ".paas" / "runtimes.json").write_text(json.dumps({"runtimes": [UNUSED]}))
    commit(repo, "names a runtime")
    result = platform.push("rt-named", repo)
    assert result.returncode != 0
    assert f"names runtime {UNUSED}, which this host does not have" in result.stderr
