"""The Node.js buildpack's scripts run directly, as the builder runs them (the environment
of paas.push.builder.step_environment), for what needs no download: detection, the
release YAML, package.json and lockfile errors. The builds themselves are tested by real
git push in tests/integration/test_nodejs.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from paas.push import builder

BUILDPACK = Path(__file__).resolve().parents[2] / "buildpacks" / "nodejs"


def run(script: str, tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    for name, text in files.items():
        (app / name).write_text(text)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = builder.step_environment(os.environ, tmp_path, home, builder.STACK, "0" * 40)
    argv = [str(BUILDPACK / "bin" / script), str(app)]
    if script == "compile":
        argv += [str(tmp_path / "cache"), str(tmp_path / "env")]
        (tmp_path / "env").mkdir(exist_ok=True)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_detect_needs_a_package_json(tmp_path: Path) -> None:
    assert run("detect", tmp_path, {"index.js": ""}).returncode == 1
    found = run("detect", tmp_path, {"package.json": "{}"})
    assert (found.returncode, found.stdout) == (0, "Node.js\n")


@pytest.mark.parametrize(
    ("files", "web"),
    [
        ({"package.json": '{"scripts": {"start": "node a.js"}}'}, True),
        ({"package.json": "{}", "server.js": ""}, True),
        ({"package.json": '{"scripts": {"build": "x"}}'}, False),
        ({"package.json": '{"scripts": {"start": "x"}}', "Procfile": "web: node a.js\n"}, False),
    ],
)
def test_release_declares_npm_start_as_heroku_does(
    tmp_path: Path, files: dict[str, str], web: bool
) -> None:
    result = run("release", tmp_path, files)
    assert result.returncode == 0, result.stderr
    expected = "---\ndefault_process_types:\n  web: npm start\n" if web else "--- {}\n"
    assert result.stdout == expected


def test_two_lockfiles_fail_before_any_download(tmp_path: Path) -> None:
    files = {"package.json": "{}", "package-lock.json": "{}", "pnpm-lock.yaml": ""}
    result = run("compile", tmp_path, files)
    assert result.returncode == 1
    assert "Several lockfiles were found: package-lock.json pnpm-lock.yaml" in result.stderr
    assert "using pnpm? delete package-lock.json: git rm package-lock.json" in result.stderr
    assert not (tmp_path / "cache" / "nodejs" / "dist").exists()


def test_package_manager_field_says_which_lockfile_to_keep(tmp_path: Path) -> None:
    files = {"package.json": '{"packageManager": "yarn@1.22.22"}', "yarn.lock": ""}
    files["package-lock.json"] = "{}"
    result = run("compile", tmp_path, files)
    assert result.returncode == 1
    assert "packageManager names yarn, so keep yarn.lock" in result.stderr
    assert "git rm package-lock.json" in result.stderr


def test_a_package_json_that_is_not_json_is_one_clear_error(tmp_path: Path) -> None:
    result = run("compile", tmp_path, {"package.json": "{nope"})
    assert result.returncode == 1
    assert "package.json cannot be read" in result.stderr
    assert "Unexpected failure" not in result.stderr


def test_a_file_index_the_build_cannot_see_is_one_line_naming_the_operator_setting(
    tmp_path: Path,
) -> None:
    """An app's NODE_BINARY_SOURCE=pypi=file://DIR: the host directory is not bound into
    its build (only the operator's is), so the error says so instead of "Cannot list"."""
    nodebin = BUILDPACK / "lib" / "nodebin.py"
    missing = tmp_path / "not-bound"
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            str(nodebin),
            "select",
            f"pypi=file://{missing}",
            "22.x",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "PAAS_NODE_BINARY_SOURCE" in lines[0], done.stderr
