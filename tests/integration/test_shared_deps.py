"""The shared dependency cache through real pushes: a second app with the same
requirements.txt builds from the entry the first push made; a build that tries to write
into an entry cannot change it, nor what another app's build gets; requirements with
options or an app's own index are never shared.

Skipped unless builds run in containers (root and a built stack): without them every app
builds its own environment. The tests share one platform and run in order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_harness import Platform, commit, running, wait_for

from paas.artifacts import stacks

STACK = stacks.rootfs(stacks.DEFAULT_STACK) if os.geteuid() == 0 else None
pytestmark = pytest.mark.skipif(STACK is None, reason="needs root and a built stack")

PRIMED = "wheels only, shared by apps with the same requirements.txt"
REUSED = "Reusing the platform's shared environment for this requirements.txt"
# A buildpack that runs before the Python one in the same build, finds the entry mounted
# into its container and tries every way to change it; prints what each attempt did.
HOSTILE_COMPILE = r"""
entry=$(awk '$5 ~ /\/deps\/entries\// {print $5; exit}' /proc/self/mountinfo)
[ -n "$entry" ] || { echo "hostile: no entry mounted"; exit 1; }
echo "hostile: found $entry"
init=$(ls "$entry"/venv/lib/python3.*/site-packages/flask/__init__.py)
try() {
  if "$@" 2>/dev/null; then echo "hostile: $1 succeeded"; else echo "hostile: $1 refused"; fi
}
try sh -c "echo 'raise SystemExit(\"poisoned\")' >> '$init'"
try touch "$entry/venv/evil.pth"
try rm -f "$entry/fingerprint"
try mv "$entry/venv" "$entry/venv.old"
try chmod -R a+w "$entry"
"""


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running() as platform:
        yield platform


def push_app(platform: Platform, app: str, repo: Path, **config: str) -> str:
    platform.paas("apps:create", app, "--no-remote")
    if config:
        platform.paas("config:set", *(f"{k}={v}" for k, v in config.items()), "-a", app)
    result = platform.push(app, repo)
    assert result.returncode == 0, result.stderr
    return result.stderr


def serving(platform: Platform, app: str) -> None:
    def hello() -> bool:
        return (platform.get_json(app) or {}).get("message") == "Hello from paas"

    wait_for(hello, 60, f"{app} serving")


def sample_repo(platform: Platform, name: str, extra: dict[str, str] | None = None) -> Path:
    repo = platform.new_repo(name)
    for path, text in (extra or {}).items():
        (repo / path).write_text(text)
    if extra:
        commit(repo, "extra files")
    return repo


def entries(platform: Platform) -> list[Path]:
    return sorted((platform.home / "deps" / "entries").glob("[0-9a-f]*"))


def tree_digest(path: Path) -> str:
    """A hash of every name, mode, owner and content under `path`."""
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            full = Path(root, name)
            stat = full.lstat()
            digest.update(f"{full.relative_to(path)} {stat.st_mode} {stat.st_uid}\n".encode())
            if full.is_file() and not full.is_symlink():
                digest.update(full.read_bytes())
    return digest.hexdigest()


def test_a_second_app_with_the_same_requirements_builds_from_the_shared_cache(
    platform: Platform,
) -> None:
    first = push_app(platform, "shared-a", sample_repo(platform, "shared-a"))
    assert PRIMED in first and "Shared environment ready" in first
    assert REUSED in first  # the first app builds from the entry it just made
    (entry,) = entries(platform)
    assert entry.stat().st_uid == 0 and entry.stat().st_mode & 0o022 == 0

    second = push_app(platform, "shared-b", sample_repo(platform, "shared-b"))
    assert REUSED in second and PRIMED not in second
    for word in ("Resolved", "Installed", "Bytecode compiled"):
        assert word not in second
    assert entries(platform) == [entry]
    serving(platform, "shared-a")
    serving(platform, "shared-b")


def test_a_build_writing_into_the_shared_cache_cannot_change_another_apps_build(
    platform: Platform,
) -> None:
    (entry,) = entries(platform)
    before = tree_digest(entry)
    url = platform.buildpack("hostile", {"detect": "echo hostile", "compile": HOSTILE_COMPILE})
    repo = sample_repo(platform, "hostile", {".buildpacks": f"{url}\nheroku/python\n"})
    output = push_app(platform, "hostile", repo)
    assert f"hostile: found {entry}" in output
    attempts = [line.rstrip() for line in output.splitlines() if "hostile: " in line][1:]
    assert len(attempts) == 5 and all(line.endswith(" refused") for line in attempts), output
    assert tree_digest(entry) == before

    victim = push_app(platform, "victim", sample_repo(platform, "victim"))
    assert REUSED in victim
    serving(platform, "victim")
    assert tree_digest(entry) == before


@pytest.mark.parametrize(
    ("requirements", "config"),
    [
        ("--extra-index-url https://pypi.org/simple\nflask\ngunicorn\n", {}),
        (None, {"PIP_EXTRA_INDEX_URL": "https://pypi.org/simple"}),  # the sample's
    ],
    ids=["options-line", "own-index"],
)
def test_requirements_with_options_or_an_own_index_are_not_shared(
    platform: Platform, requirements: str | None, config: dict[str, str]
) -> None:
    app = "own-index" if requirements is None else "own-options"
    known = entries(platform)
    extra = {} if requirements is None else {"requirements.txt": requirements}
    output = push_app(platform, app, sample_repo(platform, app, extra), **config)
    assert "shared environment" not in output and PRIMED not in output
    assert "Resolved" in output  # installed by the app's own build
    assert entries(platform) == known
    serving(platform, app)


def test_other_requirements_get_an_entry_of_their_own(platform: Platform) -> None:
    known = set(entries(platform))
    repo = sample_repo(platform, "other", {"requirements.txt": "flask\ngunicorn\nblinker\n"})
    output = push_app(platform, "other", repo)
    assert PRIMED in output and REUSED in output
    (entry,) = set(entries(platform)) - known
    assert (entry / "requirements.txt").read_text() == "flask\ngunicorn\nblinker\n"
    assert {p.stat().st_uid for p in entry.rglob("*") if not p.is_symlink()} == {0}
    serving(platform, "other")


def test_requirements_without_wheels_fall_back_to_the_apps_own_install(
    platform: Platform,
) -> None:
    # docopt 0.6.2 is published as an sdist only: the prime refuses it, the app builds it.
    needs_build = {"requirements.txt": "flask\ngunicorn\ndocopt==0.6.2\n"}
    known = entries(platform)
    output = push_app(platform, "sdist-a", sample_repo(platform, "sdist-a", needs_build))
    assert PRIMED in output and "Not shared with other apps" in output
    assert "Resolved" in output and REUSED not in output
    serving(platform, "sdist-a")
    again = push_app(platform, "sdist-b", sample_repo(platform, "sdist-b", needs_build))
    assert PRIMED not in again  # the failure is remembered, not retried on every push
    assert entries(platform) == known
    serving(platform, "sdist-b")
