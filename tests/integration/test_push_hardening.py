"""A hostile push, through a real `git push` (or a real POST to the git endpoint): links
to host files, host paths as buildpacks, oversized bodies and trees, bad bin/release types,
a hook that breaks. Each is refused with one line, and nothing of a host file leaks into
the push output, the build record or the app log.

The tests share one platform (pushes capped at 2 MB, so trees at 8 MB); each uses its own
app. The deadline test starts a platform of its own.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import zlib
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_harness import Platform, commit, git, running, wait_for

from paas.artifacts import stacks
from paas.isolation import users

CANARY = "hook-env-canary-" + os.urandom(6).hex()
WEB = "web: exec python3 -m http.server $PORT\n"
QUIET = {"detect": "echo quiet", "compile": "true"}


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    # The canary is in the API's environment, so in the hook's /proc/self/environ.
    with running(PAAS_MAX_PUSH_MB="2", PAAS_HOOK_CANARY=CANARY) as platform:
        yield platform


@pytest.fixture(scope="module")
def quiet_buildpack(platform: Platform) -> str:
    return platform.buildpack("quiet", QUIET)


def crafted(
    platform: Platform,
    name: str,
    files: dict[str, str | bytes],
    links: dict[str, str] | None = None,
) -> Path:
    repo = platform.base / f"{name}-repo"
    repo.mkdir()
    for path, content in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    for path, points_to in (links or {}).items():
        (repo / path).symlink_to(points_to)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, name)
    return repo


def push_new_app(
    platform: Platform, app: str, repo: Path, **config: str
) -> subprocess.CompletedProcess[str]:
    platform.paas("apps:create", app, "--no-remote")
    if config:
        platform.paas("config:set", *(f"{k}={v}" for k, v in config.items()), "-a", app)
    return platform.push(app, repo)


def builds(platform: Platform, app: str) -> list[tuple[str, str]]:
    """(status, output) of the app's build records, read from the store itself."""
    with sqlite3.connect(platform.home / "state.db") as db:
        rows = db.execute(
            "SELECT b.status, b.output FROM builds b JOIN apps a ON a.id = b.app_id "
            "WHERE a.name = ? ORDER BY b.created_at",
            (app,),
        ).fetchall()
    return [(str(status), str(output)) for status, output in rows]


def everything_said(platform: Platform, app: str, push: subprocess.CompletedProcess[str]) -> str:
    logs = platform.paas("logs", "-a", app, "-n", "1000").stdout
    return "\n".join([push.stdout, push.stderr, logs, *(o for _, o in builds(platform, app))])


def shadow_secret() -> str:
    return Path("/etc/shadow").read_text().splitlines()[0]


def rejected(push: subprocess.CompletedProcess[str], reason: str) -> None:
    """The push failed with one `Push rejected:` line that says `reason`."""
    assert push.returncode != 0, push.stderr
    lines = [line for line in push.stderr.splitlines() if "Push rejected:" in line]
    assert len(lines) == 1 and reason in lines[0], push.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="/etc/shadow is readable by root only")
@pytest.mark.parametrize(
    ("app", "target"), [("pf-shadow", "/etc/shadow"), ("pf-environ", "/proc/self/environ")]
)
def test_a_procfile_linked_to_a_host_file_is_refused(
    platform: Platform, app: str, target: str
) -> None:
    repo = crafted(platform, app, {"app.py": ""}, {"Procfile": target})
    push = push_new_app(platform, app, repo)
    rejected(push, "Procfile: is a symbolic link; commit it as a regular file")
    said = everything_said(platform, app, push)
    assert shadow_secret() not in said and CANARY not in said
    assert builds(platform, app)[-1][0] == "failed"


@pytest.mark.skipif(os.geteuid() != 0, reason="/etc/shadow is readable by root only")
def test_a_buildpacks_file_linked_to_a_host_file_is_refused(platform: Platform) -> None:
    repo = crafted(platform, "bps-link", {"Procfile": WEB}, {".buildpacks": "/etc/shadow"})
    push = push_new_app(platform, "bps-link", repo)
    rejected(push, ".buildpacks: is a symbolic link; commit it as a regular file")
    assert shadow_secret() not in everything_said(platform, "bps-link", push)


@pytest.mark.skipif(os.geteuid() != 0, reason="/etc/shadow is readable by root only")
@pytest.mark.parametrize("name", ["app.json", "CHECKS"])
def test_health_check_files_linked_to_host_files_are_refused(
    platform: Platform, quiet_buildpack: str, name: str
) -> None:
    app = "hc-" + name.replace(".", "").lower()
    repo = crafted(platform, app, {"Procfile": WEB}, {name: "/etc/shadow"})
    push = push_new_app(platform, app, repo, BUILDPACK_URL=quiet_buildpack)
    rejected(push, f"{name}: is a symbolic link; commit it as a regular file")
    assert shadow_secret() not in everything_said(platform, app, push)


def test_an_oversized_procfile_is_refused(platform: Platform) -> None:
    repo = crafted(platform, "pf-big", {"Procfile": WEB + "#" * 200_000 + "\n"})
    push = push_new_app(platform, "pf-big", repo)
    rejected(push, "Procfile: is larger than 128 KiB; keep it short")


@pytest.mark.parametrize(
    ("app", "url", "reason"),
    [
        ("bp-root", "/", "buildpack '/' is not a URL: a local path is never a buildpack source"),
        ("bp-dotdot", "heroku/..", "buildpack 'heroku/..' is not a built-in buildpack"),
        ("bp-other", "file:///var/lib/paas/repos/other.git", "is not allowed here"),
    ],
)
def test_host_paths_are_never_buildpacks(
    platform: Platform, app: str, url: str, reason: str
) -> None:
    repo = crafted(platform, app, {"Procfile": WEB})
    rejected(push_new_app(platform, app, repo, BUILDPACK_URL=url), reason)


def test_a_root_only_directory_is_never_a_buildpack(platform: Platform) -> None:
    secret = platform.base / "root-only"
    (secret / "bin").mkdir(parents=True)
    (secret / "bin" / "detect").write_text("#!/bin/sh\necho stolen\n")
    (secret / "bin" / "detect").chmod(0o755)
    secret.chmod(0o700)
    repo = crafted(platform, "bp-private", {"Procfile": WEB})
    push = push_new_app(platform, "bp-private", repo, BUILDPACK_URL=str(secret))
    rejected(push, "a local path is never a buildpack source")
    assert "stolen" not in push.stderr


def test_a_buildpacks_line_with_dotdot_is_refused(platform: Platform) -> None:
    escape = f"file://{platform.base}/buildpacks/../root-only\n"
    repo = crafted(platform, "bps-dotdot", {"Procfile": WEB, ".buildpacks": escape})
    rejected(push_new_app(platform, "bps-dotdot", repo), ". and .. are not allowed in its path")


@pytest.mark.skipif(os.geteuid() != 0, reason="the build user exists only as root")
def test_buildpacks_are_cloned_by_the_build_user(platform: Platform) -> None:
    url = platform.buildpack(
        "owner", {"detect": "echo owner", "compile": 'stat -c "owner=%u" "$(dirname "$0")"'}
    )
    repo = crafted(platform, "bp-owner", {"Procfile": WEB})
    push = push_new_app(platform, "bp-owner", repo, BUILDPACK_URL=url)
    assert push.returncode == 0, push.stderr
    owner = int(push.stderr.split("owner=", 1)[1].split()[0])
    assert owner >= users.APP_UID_BASE  # the app's own uid, never root's


@pytest.mark.skipif(os.geteuid() != 0, reason="the build user exists only as root")
def test_a_repo_the_build_user_cannot_read_is_not_cloned(platform: Platform) -> None:
    url = platform.buildpack("hidden", QUIET)
    (platform.base / "buildpacks" / "hidden").chmod(0o700)
    repo = crafted(platform, "bp-hidden", {"Procfile": WEB})
    push = push_new_app(platform, "bp-hidden", repo, BUILDPACK_URL=url)
    rejected(push, f"cannot fetch buildpack {url}: fatal:")
    assert "does not appear to be a git repository" in push.stderr


def test_bin_release_types_are_checked_like_the_procfile(platform: Platform) -> None:
    release = "printf 'default_process_types:\\n  ../evil: sleep 100\\n'"
    url = platform.buildpack("evil-types", {**QUIET, "release": release})
    repo = crafted(platform, "bp-types", {"app.py": ""})
    push = push_new_app(platform, "bp-types", repo, BUILDPACK_URL=url)
    rejected(push, "bin/release of the remote buildpack declares an invalid process type")
    assert "'../evil'" in push.stderr


def test_build_output_is_kept_as_a_bounded_tail(platform: Platform) -> None:
    noisy = "yes 'some build output' | head -c 3000000; echo; echo LAST-LINE"
    url = platform.buildpack("noisy", {"detect": "echo noisy", "compile": noisy})
    repo = crafted(platform, "noisy", {"Procfile": WEB})
    push = push_new_app(platform, "noisy", repo, BUILDPACK_URL=url)
    assert push.returncode == 0, push.stderr[-2000:]
    status, output = builds(platform, "noisy")[-1]
    assert status == "succeeded"
    assert 60_000 < len(output) <= 64 * 1024 and "LAST-LINE" in output


def git_post(
    platform: Platform, app: str, headers: dict[str, str], body: bytes | None
) -> tuple[int, dict[str, str]]:
    auth = b64encode(f"paas:{platform.token}".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", platform.api_port, timeout=30)
    try:
        connection.putrequest("POST", f"/{app}.git/git-receive-pack")
        for key, value in {"Authorization": f"Basic {auth}", **headers}.items():
            connection.putheader(key, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_push_body_over_the_cap_is_refused_before_it_is_read(platform: Platform) -> None:
    platform.paas("apps:create", "big-body", "--no-remote")
    status, body = git_post(platform, "big-body", {"Content-Length": str(3 * 2**20)}, None)
    assert status == 413 and body["id"] == "payload_too_large"
    assert "larger than 2 MB (PAAS_MAX_PUSH_MB)" in body["message"]


def pack_bomb(size: int) -> bytes:
    """A receive-pack request whose pack holds one `size`-byte blob stored uncompressed,
    gzipped: git would read all of it, yet it is a few hundred KB on the wire."""
    blob = b"\0" * size
    oid = hashlib.sha1(b"blob %d\0" % size + blob).hexdigest()
    header = bytearray([(3 << 4) | (size & 0x0F)])  # type 3: blob; then 7 bits a byte
    rest = size >> 4
    while rest:
        header[-1] |= 0x80
        header.append(rest & 0x7F)
        rest >>= 7
    pack = b"PACK" + struct.pack(">II", 2, 1) + bytes(header) + zlib.compress(blob, 0)
    pack += hashlib.sha1(pack).digest()
    command = f"{'0' * 40} {oid} refs/heads/main\0report-status\n"
    return gzip.compress(f"{len(command) + 4:04x}{command}0000".encode() + pack)


def test_a_gzip_bomb_is_refused_not_inflated(platform: Platform) -> None:
    platform.paas("apps:create", "bomb", "--no-remote")
    bomb = pack_bomb(64 * 2**20)  # 64 MB for git, a few hundred KB on the wire
    assert len(bomb) < 2**20
    headers = {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))}
    status, body = git_post(platform, "bomb", headers, bomb)
    assert status == 413 and body["id"] == "payload_too_large"


def test_a_git_push_over_the_cap_fails(platform: Platform) -> None:
    repo = crafted(platform, "big-push", {"Procfile": WEB, "blob": os.urandom(3 * 2**20)})
    push = push_new_app(platform, "big-push", repo)
    assert push.returncode != 0
    assert "413" in push.stderr, push.stderr


def test_a_tree_that_inflates_past_its_cap_is_refused(platform: Platform) -> None:
    repo = crafted(platform, "big-tree", {"Procfile": WEB, "zeros": b"\0" * (10 * 2**20)})
    push = push_new_app(platform, "big-tree", repo)
    rejected(push, "the pushed revision's files take more than 8 MB")


def test_a_crash_in_the_hook_fails_the_build_in_one_line(platform: Platform) -> None:
    builds_dir = platform.home / "builds"
    shutil.rmtree(builds_dir, ignore_errors=True)
    builds_dir.write_text("not a directory: every build now fails with an OSError")
    try:
        repo = crafted(platform, "crashy", {"Procfile": WEB})
        push = push_new_app(platform, "crashy", repo)
    finally:
        builds_dir.unlink()
    rejected(push, "internal error in the platform while building")
    assert "Traceback" not in push.stderr
    assert [status for status, _ in builds(platform, "crashy")] == ["failed"]
    wait_for(
        lambda: "Traceback" in (platform.base / "server.log").read_text(),
        10,
        "the traceback in the platform log",
    )


def containers_in_use(platform: Platform) -> bool:
    path = platform.home / "run" / "isolation.json"
    return path.exists() and json.loads(path.read_text())["runtime"] is not None


@pytest.mark.skipif(
    stacks.rootfs("debian-12") is not None, reason="needs a host where debian-12 is not built"
)
def test_a_missing_stack_fails_the_push_instead_of_dropping_containers(
    platform: Platform, quiet_buildpack: str
) -> None:
    if not containers_in_use(platform):
        pytest.skip("dynos run as plain processes on this host anyway")
    repo = crafted(platform, "old-stack", {"Procfile": WEB})
    platform.paas("apps:create", "old-stack", "--no-remote", "--stack", "debian-12")
    platform.paas("config:set", f"BUILDPACK_URL={quiet_buildpack}", "-a", "old-stack")
    rejected(platform.push("old-stack", repo), "stack debian-12 of app old-stack is not built")
    assert "run `paas stack:set debian-12`" in platform.push("old-stack", repo).stderr


@pytest.mark.skipif(
    stacks.rootfs("debian-12") is not None, reason="needs a host where debian-12 is not built"
)
def test_dynos_of_an_app_whose_stack_is_missing_never_run_as_plain_processes(
    platform: Platform, quiet_buildpack: str
) -> None:
    if not containers_in_use(platform):
        pytest.skip("dynos run as plain processes on this host anyway")
    repo = crafted(platform, "moved", {"Procfile": WEB})
    push = push_new_app(platform, "moved", repo, BUILDPACK_URL=quiet_buildpack)
    assert push.returncode == 0, push.stderr
    # As if debian-12 had been removed from the host after the app moved to it (stack:set
    # would build it first now).
    with sqlite3.connect(platform.home / "state.db") as db:
        db.execute("UPDATE apps SET stack = 'debian-12' WHERE name = 'moved'")
    platform.paas("ps:scale", "web=2", "-a", "moved")
    wait_for(
        lambda: "moved: stack debian-12 is not built" in (platform.base / "server.log").read_text(),
        30,
        "the agent to refuse the new dyno",
    )
    dynos = platform.dyno_statuses("moved")
    assert [d["name"] for d in dynos] == ["web.1"]
    assert all(d.get("container") for d in dynos)


def test_the_whole_push_has_a_deadline(tmp_path: Path) -> None:
    deadline = Platform(PAAS_PUSH_TIMEOUT="4")
    try:
        deadline.start()
        url = deadline.buildpack("slow", {"detect": "echo slow", "compile": "sleep 120"})
        repo = crafted(deadline, "slow", {"Procfile": WEB})
        deadline.paas("apps:create", "slow", "--no-remote")
        deadline.paas("config:set", f"BUILDPACK_URL={url}", "-a", "slow")
        push = subprocess.run(
            ["git", "push", deadline.git_url("slow"), "main"],
            cwd=repo,
            env=deadline.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        rejected(push, "the push took longer than 4s (PAAS_PUSH_TIMEOUT) and was stopped")
        assert [status for status, _ in builds(deadline, "slow")] == ["failed"]
    finally:
        deadline.stop()


FILL_CACHE = """[ -f "$2/marker" ] && echo marker-found
echo kept > "$2/marker"
if dd if=/dev/zero of="$2/fill" bs=1M count=64 2>/dev/null; then echo dd-ok; else echo dd-enospc; fi
rm -f "$2/fill"
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the cache's own filesystem needs root")
def test_a_build_cache_is_kept_between_builds_and_capped() -> None:
    capped = Platform(PAAS_BUILD_CACHE_MB="16")
    try:
        capped.start()
        url = capped.buildpack("filler", {"detect": "echo filler", "compile": FILL_CACHE})
        repo = crafted(capped, "filler", {"Procfile": WEB})
        first = push_new_app(capped, "filler", repo, BUILDPACK_URL=url)
        assert first.returncode == 0, first.stderr
        assert "dd-enospc" in first.stderr and "marker-found" not in first.stderr
        (repo / "again").write_text("second build\n")
        commit(repo, "again")
        second = capped.push("filler", repo)
        assert second.returncode == 0, second.stderr
        assert "marker-found" in second.stderr  # the cache outlived the first build
        [image] = (capped.home / "cache").glob("*.img")
        assert image.stat().st_blocks * 512 < 32 * 2**20  # the host disk took no more
    finally:
        capped.stop()
