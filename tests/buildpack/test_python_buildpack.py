"""Integration tests for the classic Python buildpack in buildpacks/python.

Each test writes a small app into tmp_path and runs the real bin/detect,
bin/compile and bin/release the way the platform does: as a child process with
the environment the builder gives its steps (paas.push.builder.step_environment: PATH
with uv first, a scratch HOME, STACK, SOURCE_VERSION, UV_PYTHON_DOWNLOADS=never,
the host's proxy/CA/index settings), so the two cannot drift. Installs come
from the package index, so these tests need it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from paas.push import builder

ROOT = Path(__file__).resolve().parents[2]
BUILDPACK = ROOT / "buildpacks" / "python"
UV_DIR = ROOT / ".venv" / "bin"
TIMEOUT = 300
SOURCE_VERSION = "0123456789abcdef0123456789abcdef01234567"

FLASK_APP = {
    "requirements.txt": "flask\ngunicorn\n",
    "app.py": """\
        from flask import Flask

        app = Flask(__name__)


        @app.get("/")
        def index():
            return "hello"
        """,
}


def stack_minor_versions() -> list[str]:
    """The python3.X interpreters outside virtualenvs on the test PATH, oldest first."""
    found: set[str] = set()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        if (Path(directory).parent / "pyvenv.cfg").exists():
            continue
        for candidate in Path(directory).glob("python3.*"):
            match = re.fullmatch(r"python(3\.\d+)", candidate.name)
            if match and os.access(candidate, os.X_OK):
                found.add(match.group(1))
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def buildpack_env(home: Path) -> dict[str, str]:
    """What the builder gives a buildpack step, with uv from this checkout's venv."""
    return builder.step_environment(os.environ, UV_DIR, home, builder.STACK, SOURCE_VERSION)


def write_app(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
    return directory


class Buildpack:
    """Runs the buildpack scripts against apps under one tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.cache = tmp_path / "cache"
        self.env_dir = tmp_path / "env"
        self.env_dir.mkdir()
        self.env = buildpack_env(self.home)

    def run(self, script: str, *args: Path | str) -> Result:
        proc = subprocess.run(
            [str(BUILDPACK / "bin" / script), *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def detect(self, app: Path) -> Result:
        return self.run("detect", app)

    def compile(self, app: Path) -> Result:
        return self.run("compile", app, self.cache, self.env_dir)

    def release(self, app: Path) -> Result:
        return self.run("release", app)

    def compile_ok(self, app: Path) -> Result:
        result = self.compile(app)
        assert result.returncode == 0, result.output
        return result

    def set_config(self, key: str, value: str) -> None:
        (self.env_dir / key).write_text(value)


@pytest.fixture
def bp(tmp_path: Path) -> Buildpack:
    return Buildpack(tmp_path)


def copy_app(src: Path, dest: Path) -> Path:
    """A fresh checkout of the app at src: its files without the build's .venv."""
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".venv"))
    return dest


def venv_python(app: Path, code: str) -> str:
    proc = subprocess.run(
        [str(app / ".venv" / "bin" / "python"), "-c", code],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.strip()


# --- detect -----------------------------------------------------------------


@pytest.mark.parametrize(
    "marker",
    [
        "requirements.txt",
        "pyproject.toml",
        "setup.py",
        "Pipfile",
        "uv.lock",
        "poetry.lock",
        ".python-version",
        "runtime.txt",
        "manage.py",
    ],
)
def test_detect_accepts_python_apps(bp: Buildpack, tmp_path: Path, marker: str) -> None:
    app = write_app(tmp_path / "app", {marker: ""})
    result = bp.detect(app)
    assert result.returncode == 0
    assert result.stdout == "Python\n"


def test_detect_rejects_other_apps(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"package.json": "{}", "index.js": "", "README.md": ""})
    result = bp.detect(app)
    assert result.returncode == 1
    assert result.stdout == ""


# --- requirements.txt, relocation, cache --------------------------------------


def test_flask_app_compiles_and_works_after_moving(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(tmp_path / "build", FLASK_APP)
    result = bp.compile_ok(app)

    minor = stack_minor_versions()[-1]
    assert re.search(rf"^-----> Using Python {re.escape(minor)}\.\d+ ", result.stdout, re.M)
    assert "-----> Installing requirements with uv" in result.stdout
    assert "+ flask==" in result.stdout
    cfg = (app / ".venv" / "pyvenv.cfg").read_text()
    assert "relocatable = true" in cfg

    moved = tmp_path / "elsewhere" / "app"
    moved.parent.mkdir()
    shutil.move(app, moved)
    assert venv_python(moved, "import flask, sys; print(sys.prefix)") == str(moved / ".venv")
    gunicorn = subprocess.run(
        [str(moved / ".venv" / "bin" / "gunicorn"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "gunicorn" in gunicorn.stdout + gunicorn.stderr


def test_profile_script_puts_venv_on_path_and_only_sets_defaults(
    bp: Buildpack, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "build", FLASK_APP)
    bp.compile_ok(app)
    moved = tmp_path / "app"
    shutil.move(app, moved)
    script = (
        '. "$HOME/.profile.d/python.sh"; command -v gunicorn; '
        'echo "$WEB_CONCURRENCY $PYTHONUNBUFFERED ${PYTHONHOME-unset}"'
    )
    proc = subprocess.run(
        ["bash", "-c", script],
        env={
            "HOME": str(moved),
            "PATH": "/usr/bin:/bin",
            "PYTHONHOME": "/x",
            "WEB_CONCURRENCY": "5",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert proc.stdout.splitlines() == [str(moved / ".venv" / "bin" / "gunicorn"), "5 1 unset"]


def test_second_compile_reuses_the_cached_environment(bp: Buildpack, tmp_path: Path) -> None:
    first = write_app(tmp_path / "build1", FLASK_APP)
    bp.compile_ok(first)

    second = write_app(tmp_path / "build2", FLASK_APP)
    result = bp.compile_ok(second)
    assert "       Dependencies unchanged, reusing the cached environment\n" in result.stdout
    for word in ("Resolved", "Installed", "+ flask"):
        assert word not in result.output
    assert venv_python(second, "import flask, gunicorn; print('ok')") == "ok"


def test_changed_requirements_are_installed_again(bp: Buildpack, tmp_path: Path) -> None:
    bp.compile_ok(write_app(tmp_path / "build1", FLASK_APP))
    changed = write_app(tmp_path / "build2", {**FLASK_APP, "requirements.txt": "flask\nsix\n"})
    result = bp.compile_ok(changed)
    assert "Dependencies unchanged" not in result.output
    assert "+ six==" in result.stdout
    venv_python(changed, "import six, flask")
    assert not (changed / ".venv" / "bin" / "gunicorn").exists()


def test_broken_requirement_fails_the_build(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "build", {"requirements.txt": "this-package-does-not-exist-paas==1.0\n"}
    )
    result = bp.compile(app)
    assert result.returncode != 0
    assert "this-package-does-not-exist-paas" in result.output
    assert "Could not install the dependencies from requirements.txt" in result.stderr


def test_app_without_dependency_files_fails_with_help(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(tmp_path / "build", {"manage.py": "", "README.md": ""})
    result = bp.compile(app)
    assert result.returncode != 0
    assert "No Python dependency file was found" in result.stderr
    assert "requirements.txt" in result.stderr


# --- Python version -------------------------------------------------------------


def test_unavailable_python_version_fails_naming_the_available_ones(
    bp: Buildpack, tmp_path: Path
) -> None:
    app = write_app(tmp_path / "build", {**FLASK_APP, ".python-version": "3.99\n"})
    result = bp.compile(app)
    assert result.returncode != 0
    available = ", ".join(stack_minor_versions())
    assert (
        f"Python 3.99 was requested by .python-version, but this stack ({builder.STACK}) has: "
        f"{available}" in result.stderr
    )
    assert "move the app to stack" not in result.stderr  # no stack has 3.99
    assert not (app / ".venv").exists()


def test_unavailable_python_names_the_stack_that_has_it(bp: Buildpack, tmp_path: Path) -> None:
    bp.env["PAAS_STACK_PYTHONS"] = "debian-12=3.11 debian-99=3.99"
    app = write_app(tmp_path / "build", {**FLASK_APP, ".python-version": "3.99\n"})
    result = bp.compile(app)
    assert result.returncode != 0
    assert "move the app to stack debian-99, which has Python 3.99" in result.stderr


def test_runtime_txt_is_honoured_to_major_minor(bp: Buildpack, tmp_path: Path) -> None:
    minor = stack_minor_versions()[-1]
    app = write_app(tmp_path / "build", {**FLASK_APP, "runtime.txt": f"python-{minor}.999\n"})
    result = bp.compile_ok(app)
    assert re.search(
        rf"^-----> Using Python {re.escape(minor)}\.\d+ \(from runtime.txt\)", result.stdout, re.M
    )
    assert venv_python(app, "import sys; print('%d.%d' % sys.version_info[:2])") == minor


def test_python_version_file_is_honoured(bp: Buildpack, tmp_path: Path) -> None:
    minor = stack_minor_versions()[-1]
    app = write_app(tmp_path / "build", {**FLASK_APP, ".python-version": f"# pinned\n{minor}\n"})
    result = bp.compile_ok(app)
    assert "(from .python-version)" in result.stdout


def test_unreadable_python_version_fails_with_help(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(tmp_path / "build", {**FLASK_APP, ".python-version": "latest\n"})
    result = bp.compile(app)
    assert result.returncode != 0
    assert "Cannot read the Python version in .python-version: found 'latest'" in result.stderr
    assert "Unexpected failure" not in result.stderr  # an expected failure, said once


# --- other dependency managers ---------------------------------------------------


def test_uv_lock_project(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "build",
        {
            "pyproject.toml": """\
                [project]
                name = "hello"
                version = "0.1.0"
                requires-python = ">=3.9"
                dependencies = ["six==1.16.0"]

                [dependency-groups]
                dev = ["iniconfig"]
                """,
            "app.py": "import six\n",
        },
    )
    subprocess.run(
        [str(UV_DIR / "uv"), "lock", "--quiet"],
        cwd=app,
        env={**buildpack_env(bp.home), "UV_CACHE_DIR": str(tmp_path / "lock-cache")},
        check=True,
        timeout=TIMEOUT,
    )
    result = bp.compile_ok(app)
    assert "-----> Installing dependencies from uv.lock with uv" in result.stdout
    moved = tmp_path / "moved"
    shutil.move(app, moved)
    assert venv_python(moved, "import six; print(six.__version__)") == "1.16.0"
    with pytest.raises(subprocess.CalledProcessError):
        venv_python(moved, "import iniconfig")

    again = bp.compile_ok(copy_app(moved, tmp_path / "build2"))
    assert "Dependencies unchanged, reusing the cached environment" in again.stdout


def test_stale_uv_lock_fails_with_help(bp: Buildpack, tmp_path: Path) -> None:
    pyproject = '[project]\nname = "x"\nversion = "0.1"\ndependencies = [%s]\n'
    app = write_app(tmp_path / "build", {"pyproject.toml": pyproject % '"six"'})
    subprocess.run(
        [str(UV_DIR / "uv"), "lock", "--quiet"],
        cwd=app,
        env={**buildpack_env(bp.home), "UV_CACHE_DIR": str(tmp_path / "lock-cache")},
        check=True,
        timeout=TIMEOUT,
    )
    (app / "pyproject.toml").write_text(pyproject % '"six", "iniconfig"')
    result = bp.compile(app)
    assert result.returncode != 0
    assert "Could not install the dependencies from uv.lock" in result.stderr
    assert "run 'uv lock', commit uv.lock" in result.stderr


def test_packaged_pyproject_app_gets_its_entry_point(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "build",
        {
            "pyproject.toml": """\
                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"

                [project]
                name = "greeter"
                version = "0.1.0"
                dependencies = ["six"]

                [project.scripts]
                greet = "greeter:main"
                """,
            "greeter/__init__.py": "def main():\n    print('hello from greeter')\n",
        },
    )
    result = bp.compile_ok(app)
    assert "-----> Installing dependencies from pyproject.toml with uv" in result.stdout
    assert "-----> Installing the app's own package" in result.stdout
    moved = tmp_path / "moved"
    shutil.move(app, moved)
    proc = subprocess.run(
        [str(moved / ".venv" / "bin" / "greet")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout == "hello from greeter\n"
    venv_python(moved, "import six")


def test_poetry_lock_pins_versions(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "build",
        {
            "pyproject.toml": """\
                [project]
                name = "poetic"
                version = "0.1.0"
                dependencies = ["six"]

                [tool.poetry]
                package-mode = false
                """,
            "poetry.lock": """\
                [[package]]
                name = "six"
                version = "1.15.0"
                description = ""
                optional = false
                python-versions = "*"
                groups = ["main"]
                files = []

                [metadata]
                lock-version = "2.1"
                python-versions = ">=3.9"
                content-hash = "0"
                """,
        },
    )
    result = bp.compile_ok(app)
    assert "Installing dependencies from poetry.lock with uv" in result.stdout
    assert venv_python(app, "import six; print(six.__version__)") == "1.15.0"


def test_pipfile_lock(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "build",
        {
            "Pipfile": "[packages]\nsix = '*'\n",
            "Pipfile.lock": json.dumps(
                {"_meta": {}, "default": {"six": {"version": "==1.16.0"}}, "develop": {}}
            ),
        },
    )
    bp.compile_ok(app)
    assert venv_python(app, "import six; print(six.__version__)") == "1.16.0"


def test_pipfile_without_lock_fails_with_help(bp: Buildpack, tmp_path: Path) -> None:
    result = bp.compile(write_app(tmp_path / "build", {"Pipfile": "[packages]\n"}))
    assert result.returncode != 0
    assert "pipenv lock" in result.stderr


# --- Django -------------------------------------------------------------------------

DJANGO_APP = {
    "requirements.txt": "django\ngunicorn\npyyaml\n",
    "manage.py": """\
        import os
        import sys

        if __name__ == "__main__":
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
            from django.core.management import execute_from_command_line

            execute_from_command_line(sys.argv)
        """,
    "mysite/__init__.py": "",
    "mysite/settings.py": """\
        import os
        from pathlib import Path

        BASE_DIR = Path(__file__).resolve().parent.parent
        SECRET_KEY = os.environ["SECRET_KEY"]
        INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth",
                          "django.contrib.contenttypes", "django.contrib.staticfiles"]
        ROOT_URLCONF = "mysite.urls"
        STATIC_URL = "static/"
        STATIC_ROOT = BASE_DIR / "staticfiles"
        STATICFILES_DIRS = [BASE_DIR / "static"]
        """,
    "mysite/urls.py": "urlpatterns = []\n",
    "mysite/wsgi.py": """\
        import os
        from django.core.wsgi import get_wsgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        application = get_wsgi_application()
        """,
    "static/css/site.css": "body { color: black; }\n",
}


def load_yaml(app: Path, text: str) -> object:
    code = "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"
    proc = subprocess.run(
        [str(app / ".venv" / "bin" / "python"), "-c", code],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout)


def test_django_app_gets_collectstatic_and_a_default_web_process(
    bp: Buildpack, tmp_path: Path
) -> None:
    bp.set_config("SECRET_KEY", "not-so-secret")
    app = write_app(tmp_path / "build", DJANGO_APP)
    result = bp.compile_ok(app)
    assert "-----> Running Django collectstatic" in result.stdout
    assert (app / "staticfiles" / "css" / "site.css").is_file()
    assert (app / "staticfiles" / "admin" / "css" / "base.css").is_file()

    release = bp.release(app)
    assert release.returncode == 0
    assert load_yaml(app, release.stdout) == {
        "default_process_types": {"web": "gunicorn mysite.wsgi"}
    }

    (app / "Procfile").write_text("web: gunicorn mysite.wsgi --log-file -\n")
    release = bp.release(app)
    assert release.stdout == "--- {}\n"
    assert load_yaml(app, release.stdout) == {}


def test_collectstatic_can_be_disabled(bp: Buildpack, tmp_path: Path) -> None:
    bp.set_config("DISABLE_COLLECTSTATIC", "1")
    app = write_app(tmp_path / "build", DJANGO_APP)
    result = bp.compile_ok(app)
    assert "Skipping Django collectstatic" in result.stdout
    assert not (app / "staticfiles").exists()


def test_failing_collectstatic_fails_the_build(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(tmp_path / "build", DJANGO_APP)  # no SECRET_KEY config var
    result = bp.compile(app)
    assert result.returncode != 0
    assert "KeyError: 'SECRET_KEY'" in result.stdout
    assert "'python manage.py collectstatic --noinput' failed" in result.stderr
    assert "DISABLE_COLLECTSTATIC=1" in result.stderr


def test_release_without_django_is_the_empty_answer(bp: Buildpack, tmp_path: Path) -> None:
    app = write_app(tmp_path / "build", FLASK_APP)
    result = bp.release(app)
    assert result.returncode == 0
    assert result.stdout == "--- {}\n"


# --- unexpected failures ----------------------------------------------------------

UNEXPECTED = re.compile(
    r"^ !     Unexpected failure in (\S+) at (\S+):(\d+) \(exit status (\d+)\): (.+)$", re.M
)


def line_of(path: Path, text: str) -> int:
    """The number of the one line of `path` that contains `text`."""
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return number


def test_unexpected_failure_names_the_script_line_and_command(
    bp: Buildpack, tmp_path: Path
) -> None:
    # A cache left in a state no step expects: python/ is a file, so saving the venv fails.
    bp.cache.mkdir()
    (bp.cache / "python").write_text("not a directory")
    app = write_app(tmp_path / "build", {"requirements.txt": ""})
    result = bp.compile(app)
    assert result.returncode != 0
    found = UNEXPECTED.findall(result.stderr)
    command = 'mkdir -p -- "$cache_dir/python"'
    where = line_of(BUILDPACK / "lib" / "cache.sh", command)
    assert found == [("bin/compile", "lib/cache.sh", str(where), "1", command)], result.stderr


def strict_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """Runs `body` as a script the way bin/ scripts run: strict mode, output.sh's ERR trap."""
    script = tmp_path / "strict.sh"
    script.write_text(
        "set -Eeuo pipefail\nshopt -s inherit_errexit\n"
        f'source "{BUILDPACK}/lib/output.sh"\noutput::trap_unexpected\n{body}'
    )
    return subprocess.run(
        ["bash", str(script)],
        env={"PATH": "/usr/bin:/bin", "BUILDPACK_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_failure_inside_command_substitutions_is_reported_once_where_it_happened(
    tmp_path: Path,
) -> None:
    body = "inner() {\n\tfalse\n}\nouter() { x=$(inner); }\ny=$(outer)\necho no\n"
    proc = strict_script(tmp_path, body)
    assert proc.returncode == 1 and proc.stdout == ""
    assert UNEXPECTED.findall(proc.stderr) == [("strict.sh", "strict.sh", "6", "1", "false")]


def test_an_expected_failure_inside_a_command_substitution_is_not_reported_again(
    tmp_path: Path,
) -> None:
    proc = strict_script(tmp_path, 'x=$(output::fail "The app is broken." "Fix it.")\necho no\n')
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "\n !     The app is broken.\n !     Fix it.\n\n"


# --- pieces tested alone ------------------------------------------------------------


def index_settings(env: dict[str, str], config: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Run config::export_index_settings and return the UV_*/SSL_* variables it leaves."""
    env_dir = tmp_path / "config"
    env_dir.mkdir()
    for key, value in config.items():
        (env_dir / key).write_text(value)
    script = (
        f'source "{BUILDPACK}/lib/output.sh"; source "{BUILDPACK}/lib/config.sh"; '
        f'config::export_index_settings "{env_dir}"; env'
    )
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    pairs = (line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return {k: v for k, v in pairs if k.startswith(("UV_", "SSL_"))}


def test_pip_settings_are_mapped_onto_uv(tmp_path: Path) -> None:
    got = index_settings(
        {
            "PIP_INDEX_URL": "https://mirror.example/simple",
            "PIP_EXTRA_INDEX_URL": "https://a.example/simple https://b.example/simple",
            "PIP_CERT": "/etc/corp-ca.pem",
            "PIP_FIND_LINKS": "/opt/wheels /opt/more",
        },
        {},
        tmp_path,
    )
    assert got == {
        "UV_DEFAULT_INDEX": "https://mirror.example/simple",
        "UV_INDEX": "https://a.example/simple https://b.example/simple",
        "SSL_CERT_FILE": "/etc/corp-ca.pem",
        "UV_FIND_LINKS": "/opt/wheels,/opt/more",
    }


def test_uv_settings_win_and_config_vars_override_the_host(tmp_path: Path) -> None:
    got = index_settings(
        {
            "PIP_INDEX_URL": "https://pip.example/simple",
            "UV_DEFAULT_INDEX": "https://uv.example/simple",
            "SSL_CERT_FILE": "/etc/host-ca.pem",
            "REQUESTS_CA_BUNDLE": "/etc/other.pem",
        },
        {"PIP_EXTRA_INDEX_URL": "https://private.example/simple"},
        tmp_path,
    )
    assert got == {
        "UV_DEFAULT_INDEX": "https://uv.example/simple",
        "UV_INDEX": "https://private.example/simple",
        "SSL_CERT_FILE": "/etc/host-ca.pem",
    }


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(
        str(p) for p in [*(BUILDPACK / "bin").iterdir(), *(BUILDPACK / "lib").glob("*.sh")]
    )
    proc = subprocess.run(
        ["shellcheck", "-x", *scripts],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout


# --- A Python the platform offers (PAAS_MANAGED_PYTHON) -----------------------------


def stack_without_pythons(tmp_path: Path) -> str:
    """A PATH like the host's without its Pythons: every /usr/bin program linked into a
    directory except the Pythons, and a python3.99 standing for the stack's own."""
    bin_dir = tmp_path / "stack-bin"
    bin_dir.mkdir()
    for program in Path("/usr/bin").iterdir():
        if not program.name.startswith("python"):
            (bin_dir / program.name).symlink_to(program)
    (bin_dir / "python3.99").symlink_to("/bin/false")
    return f"{UV_DIR}:{bin_dir}"


def offered_python(tmp_path: Path, minor: str) -> Path:
    """A read-only relocatable Python home as the platform's store holds one: the host's
    bin/python3.X and lib/python3.X."""
    home = tmp_path / "store" / "python"
    (home / "bin").mkdir(parents=True)
    shutil.copy2(f"/usr/bin/python{minor}", home / "bin")
    shutil.copytree(f"/usr/lib/python{minor}", home / "lib" / f"python{minor}", symlinks=True)
    subprocess.run(["chmod", "-R", "a-w", str(home)], check=True, timeout=60)
    return home


@pytest.mark.skipif(not Path("/usr/bin/python3.11").is_file(), reason="needs the host's 3.11")
def test_an_offered_python_goes_into_the_slug_and_its_venv_moves_with_it(
    bp: Buildpack, tmp_path: Path
) -> None:
    bp.env["PATH"] = stack_without_pythons(tmp_path)
    bp.env["PAAS_MANAGED_PYTHON"] = str(offered_python(tmp_path, "3.11"))
    files = {"requirements.txt": "# none\n", ".python-version": "3.11\n"}
    app = write_app(tmp_path / "build", files)
    result = bp.compile_ok(app)
    assert "-----> Using Python 3.11." in result.stdout
    assert os.readlink(app / ".venv" / "bin" / "python") == "../../.heroku/python/bin/python3.11"
    assert "home =" not in (app / ".venv" / "pyvenv.cfg").read_text()

    # At another path (a dyno's /app): the interpreter finds its prefix where it is.
    moved = tmp_path / "elsewhere"
    shutil.move(app, moved)
    code = "import sys, ssl; print(sys.version_info[:2] == (3, 11), sys.base_prefix)"
    assert venv_python(moved, code) == f"True {moved / '.heroku' / 'python'}"

    # A second build at yet another path reuses the cached environment.
    again = bp.compile_ok(write_app(tmp_path / "build2", files))
    assert "Dependencies unchanged, reusing the cached environment" in again.stdout
    assert (tmp_path / "build2" / ".heroku" / "python" / "bin" / "python3.11").is_file()
