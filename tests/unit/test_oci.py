import pytest

from paas import oci
from paas.errors import InvalidParams


def spec(**extra: object) -> oci.ContainerSpec:
    fields: dict[str, object] = {
        "hostname": "demo.web.1.v1.ab12",
        "command": "gunicorn app:app",
        "env": {"PORT": "5000", "DYNO": "web.1"},
        "uid": 999,
        "gid": 995,
        "memory_mb": 512,
        "cgroups_path": "paas/demo.web.1.v1.ab12",
        "netns_path": "/var/run/netns/paas-x",
    }
    fields.update(extra)
    return oci.ContainerSpec(**fields)  # type: ignore[arg-type]


def test_dyno_runs_as_non_root_under_tini_with_few_capabilities() -> None:
    config = oci.runtime_config(spec())
    process = config["process"]
    assert isinstance(process, dict)
    assert process["user"]["uid"] == 999
    assert process["args"][:3] == ["/usr/bin/tini", "-g", "--"]
    assert process["args"][-1].endswith("gunicorn app:app")
    assert process["capabilities"]["bounding"] == ["CAP_NET_BIND_SERVICE"]
    assert process["noNewPrivileges"] is True
    assert "DYNO=web.1" in process["env"] and process["cwd"] == "/app"


def test_namespaces_and_limits() -> None:
    config = oci.runtime_config(spec())
    linux = config["linux"]
    assert isinstance(linux, dict)
    kinds = {n["type"]: n for n in linux["namespaces"]}
    assert set(kinds) == {"pid", "ipc", "uts", "mount", "network"}
    assert kinds["network"]["path"] == "/var/run/netns/paas-x"
    memory = linux["resources"]["memory"]
    assert memory["limit"] == memory["swap"] == 512 * 2**20  # no swap beyond the limit
    assert linux["resources"]["pids"]["limit"] == oci.PIDS_LIMIT
    assert "unified" not in linux["resources"]
    assert config["hostname"] == "demo.web.1.v1.ab12"


def test_cgroup_v2_ends_the_whole_dyno_on_oom() -> None:
    linux = oci.runtime_config(spec(cgroup_version=2))["linux"]
    assert isinstance(linux, dict)
    assert linux["resources"]["unified"] == {"memory.oom.group": "1"}


@pytest.mark.parametrize(
    ("size", "mb"), [("standard-1x", 512), ("standard-2x", 1024), ("300M", 300)]
)
def test_sizes(size: str, mb: int) -> None:
    assert oci.memory_mb(size) == mb


@pytest.mark.parametrize("size", ["huge", "10M", "12G", "-5M"])
def test_bad_sizes(size: str) -> None:
    with pytest.raises(InvalidParams, match="invalid dyno size"):
        oci.memory_mb(size)
