"""The process runtime and its supervisor, with real processes."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from platform_harness import cmdline, wait_for

from paas.domain.dyno import DynoSpec
from paas.domain.settings import Settings
from paas.dynos.runtime import ProcessRuntime
from paas.host import procs
from paas.isolation.users import build_user, ensure_user
from paas.reconcile.agent import supervisor_environment
from paas.state.logs import LogStore


@pytest.fixture
def settings() -> Iterator[Settings]:
    base = Path(tempfile.mkdtemp(prefix="paas-rt-", dir="/tmp"))
    base.chmod(0o711)
    settings = Settings(home=base / "home", stop_grace_seconds=1.0)
    settings.home.mkdir(mode=0o711)
    user = build_user(settings)
    if user:
        ensure_user(user)
    yield settings
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[ProcessRuntime]:
    runtime = ProcessRuntime(settings.dynos_dir, supervisor_environment(settings))
    yield runtime
    for status in runtime.list():
        runtime.stop(status.spec.id)
    wait_for(lambda: all(s.state == "exited" for s in runtime.list()), 10, "dynos to stop")
    for status in runtime.list():
        runtime.forget(status.spec.id)
    runtime.close()


def make_slug(settings: Settings, script: str) -> Path:
    slug = settings.home / "slug"
    (slug / ".profile.d").mkdir(parents=True)
    (slug / ".profile.d" / "greeting.sh").write_text('export GREETING="${GREETING:-profile}"\n')
    (slug / "run.sh").write_text(script)
    slug.chmod(0o755)
    return slug


def spec(settings: Settings, slug: Path, command: str, name: str = "worker.1") -> DynoSpec:
    return DynoSpec(
        id=f"t.{name}.{os.urandom(3).hex()}",
        app="t",
        name=name,
        type=name.split(".")[0],
        release=1,
        generation=0,
        command=command,
        app_dir=str(slug),
        port=4321,
        env={"SECRET": "s"},
        user=build_user(settings),
        grace_seconds=1.0,
    )


def test_dyno_output_environment_and_exit_are_recorded(
    settings: Settings, runtime: ProcessRuntime
) -> None:
    slug = make_slug(settings, 'echo "$GREETING $DYNO $PORT $SECRET $HOME $(id -u)"; touch mine\n')
    dyno = spec(settings, slug, "bash run.sh")
    runtime.start(dyno)
    (status,) = wait_for(
        lambda: [s for s in runtime.list() if s.state == "exited"] or None, 10, "exit"
    )
    assert status.exit_status == 0
    lines, _ = LogStore(settings.logs_db_path).read("t", source="app")
    greeting, name, port, secret, home, uid = lines[0].message.split()
    assert (greeting, name, port, secret) == ("profile", "worker.1", "4321", "s")
    assert home == status.spec.app_dir and home != str(slug)  # its own copy of the slug
    assert (Path(home) / "mine").exists() and not (slug / "mine").exists()
    if os.geteuid() == 0:
        assert uid != "0"  # never root


def test_stop_escalates_to_sigkill_and_leaves_no_process(
    settings: Settings, runtime: ProcessRuntime
) -> None:
    slug = make_slug(settings, "trap '' TERM; sleep 300 & sleep 300 & wait\n")
    dyno = spec(settings, slug, "bash run.sh")
    runtime.start(dyno)
    (status,) = wait_for(lambda: [s for s in runtime.list() if s.pid] or None, 10, "start")
    pgid = status.pid
    assert pgid is not None and procs.group_alive(pgid)
    runtime.stop(dyno.id)
    wait_for(lambda: runtime.list()[0].state == "exited", 10, "the dyno to stop")
    assert not procs.group_alive(pgid)
    events, _ = LogStore(settings.logs_db_path).read("t", source="paas")
    assert any("SIGKILL" in e.message for e in events)


def test_dynos_outlive_the_launcher_and_a_dead_launcher_is_replaced(
    settings: Settings, runtime: ProcessRuntime
) -> None:
    slug = make_slug(settings, "exec sleep 300\n")
    first = spec(settings, slug, "bash run.sh", "worker.1")
    runtime.start(first)
    wait_for(lambda: [s for s in runtime.list() if s.pid] or None, 10, "worker.1 to run")
    launcher = runtime.launcher.process
    assert launcher is not None
    launcher.kill()  # as if the launcher had crashed; the fixture's close() reaps it
    launcher.wait(timeout=10)
    second = spec(settings, slug, "bash run.sh", "worker.2")
    runtime.start(second)
    wait_for(lambda: sum(bool(s.pid) for s in runtime.list()) == 2, 10, "worker.2 to run")
    runtime.close()  # the agent stopping: its launcher ends, the dynos it started do not
    statuses = runtime.list()
    assert len(statuses) == 2
    assert all(s.pid and procs.group_alive(s.pid) and s.state != "exited" for s in statuses)


def test_supervisor_and_launcher_say_what_they_run_in_their_process_titles(
    settings: Settings, runtime: ProcessRuntime
) -> None:
    slug = make_slug(settings, "exec sleep 300\n")
    dyno = replace(spec(settings, slug, "bash run.sh", "web.3"), app="demo", release=7)
    runtime.start(dyno)
    wait_for(lambda: [s for s in runtime.list() if s.pid] or None, 10, "web.3 to run")
    status = json.loads((settings.dynos_dir / dyno.id / "status.json").read_text())
    assert cmdline(status["supervisor_pid"]) == "paas-supervisor demo web.3 v7"
    launcher = runtime.launcher.process
    assert launcher is not None
    assert cmdline(launcher.pid) == f"paas-launcher {settings.dynos_dir}"
