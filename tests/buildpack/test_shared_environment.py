"""The Python buildpack's side of the shared dependency cache: bin/prime builds an
environment from wheels without running any package code, and bin/compile reuses it only
for the requirements it was built for, and only for an app without an index of its own.

The scripts run as test_python_buildpack runs them (the builder's step environment);
bin/prime gets DIR as the platform lays it out (DIR/app/requirements.txt), and its DIR is
what PAAS_SHARED_VENV names in an app's build.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest
from test_python_buildpack import FLASK_APP, Buildpack, venv_python, write_app

PROBE = "paas_pth_probe"


@pytest.fixture
def bp(tmp_path: Path) -> Buildpack:
    return Buildpack(tmp_path)


def primed(bp: Buildpack, directory: Path, requirements: str) -> Path:
    """DIR after a successful bin/prime for `requirements`."""
    write_app(directory / "app", {"requirements.txt": requirements})
    result = bp.run("prime", directory)
    assert result.returncode == 0, result.output
    return directory


def test_compile_copies_the_shared_environment_built_for_its_requirements(
    bp: Buildpack, tmp_path: Path
) -> None:
    shared = primed(bp, tmp_path / "shared", FLASK_APP["requirements.txt"])
    app = write_app(tmp_path / "build", FLASK_APP)
    bp.env["PAAS_SHARED_VENV"] = str(shared)
    result = bp.compile_ok(app)
    assert "Reusing the platform's shared environment" in result.stdout
    for word in ("Resolved", "Installed", "+ flask"):
        assert word not in result.output
    assert venv_python(app, "import flask, gunicorn; print('ok')") == "ok"
    # The copy is the app's own (not links into the entry); the app's cache stays empty.
    init = next((app / ".venv").glob("lib/python*/site-packages/flask/__init__.py"))
    assert init.stat().st_nlink == 1
    assert not (bp.cache / "python" / "venv").exists()


@pytest.mark.parametrize(
    ("requirements", "config"),
    [
        ("flask\nsix\n", {}),
        (FLASK_APP["requirements.txt"], {"PIP_INDEX_URL": "https://pypi.org/simple"}),
    ],
    ids=["other-requirements", "own-index"],
)
def test_compile_installs_its_own_when_the_shared_environment_is_not_for_it(
    bp: Buildpack, tmp_path: Path, requirements: str, config: dict[str, str]
) -> None:
    shared = primed(bp, tmp_path / "shared", FLASK_APP["requirements.txt"])
    app = write_app(tmp_path / "build", {**FLASK_APP, "requirements.txt": requirements})
    for key, value in config.items():
        bp.set_config(key, value)
    bp.env["PAAS_SHARED_VENV"] = str(shared)
    result = bp.compile_ok(app)
    assert "shared environment" not in result.output
    assert "Resolved" in result.output


def probe_wheel(directory: Path, marker: Path) -> Path:
    """A wheel whose .pth file appends to `marker` whenever an interpreter starts with it
    in site-packages: package code that runs without being imported."""
    files = {
        f"{PROBE}.pth": f"import os; open({str(marker)!r}, 'a').write('ran\\n')\n",
        f"{PROBE}/__init__.py": "VALUE = 1\n",
        f"{PROBE}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: 1.0\n",
        f"{PROBE}-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: paas-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{PROBE}-1.0.dist-info/RECORD,,")
    files[f"{PROBE}-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    directory.mkdir()
    wheel = directory / f"{PROBE}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return directory


def test_prime_runs_no_package_code_where_a_plain_install_does(
    bp: Buildpack, tmp_path: Path
) -> None:
    marker = tmp_path / "pth-ran"
    wheels = probe_wheel(tmp_path / "wheels", marker)
    bp.env.update(UV_FIND_LINKS=str(wheels), UV_NO_INDEX="1")
    for key in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX"):
        bp.env.pop(key, None)

    shared = primed(bp, tmp_path / "shared", f"{PROBE}\n")
    assert not marker.exists()  # nothing of the package ran while it was installed
    compiled = list(shared.glob(f"venv/lib/python*/site-packages/{PROBE}/__pycache__/*.pyc"))
    assert compiled  # and yet it was byte-compiled
    assert (shared / "fingerprint").read_text().strip()

    # A plain install of the same wheel runs its .pth: uv byte-compiles with the site
    # module on. This is why the platform's shared environments are built by bin/prime.
    bp.compile_ok(write_app(tmp_path / "build", {"requirements.txt": f"{PROBE}\n"}))
    assert marker.exists()


def test_prime_refuses_a_package_that_must_be_built(bp: Buildpack, tmp_path: Path) -> None:
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    # An sdist only: installing it would run its build backend (setup.py).
    with zipfile.ZipFile(sdists / "paas_sdist_only-1.0.zip", "w") as archive:
        archive.writestr("paas_sdist_only-1.0/setup.py", "raise SystemExit('setup.py ran')\n")
    bp.env.update(UV_FIND_LINKS=str(sdists), UV_NO_INDEX="1")
    write_app(tmp_path / "shared" / "app", {"requirements.txt": "paas_sdist_only\n"})
    result = bp.run("prime", tmp_path / "shared")
    assert result.returncode != 0
    assert "setup.py ran" not in result.output
    assert not (tmp_path / "shared" / "fingerprint").exists()
