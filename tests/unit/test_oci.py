import pytest

from paas.domain import sizes
from paas.domain.errors import InvalidParams, PaasError
from paas.isolation import oci


def spec(cgroup_version: int = 1) -> oci.ContainerSpec:
    return oci.ContainerSpec(
        hostname="demo.web.1.v1.ab12",
        command="gunicorn app:app",
        env={"PORT": "5000", "DYNO": "web.1"},
        uid=999,
        gid=995,
        memory_mb=512,
        cgroups_path="paas/demo.web.1.v1.ab12",
        netns_path="/var/run/netns/paas-x",
        cgroup_version=cgroup_version,
    )


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
    assert sizes.memory_mb(size) == mb


@pytest.mark.parametrize("size", ["huge", "10M", "12G", "-5M"])
def test_bad_sizes(size: str) -> None:
    with pytest.raises(InvalidParams, match="invalid dyno size"):
        sizes.memory_mb(size)


def test_every_container_gets_the_seccomp_denylist() -> None:
    linux = oci.runtime_config(spec())["linux"]
    assert isinstance(linux, dict)
    seccomp = linux["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ALLOW"
    assert seccomp["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    denied = {n for rule in seccomp["syscalls"] if "args" not in rule for n in rule["names"]}
    for name in ("keyctl", "bpf", "perf_event_open", "mount", "ptrace", "kexec_load", "setns"):
        assert name in denied
    (clone3,) = [r for r in seccomp["syscalls"] if r["names"] == ["clone3"]]
    assert clone3["errnoRet"] == oci.ENOSYS  # glibc falls back to clone, which is checked
    by_flag = {r["names"][0]: r["args"] for r in seccomp["syscalls"] if "args" in r}
    newuser = [
        {"index": 0, "value": 0x10000000, "valueTwo": 0x10000000, "op": "SCMP_CMP_MASKED_EQ"}
    ]
    assert by_flag == {"clone": newuser, "unshare": newuser}


def test_aarch64_has_its_own_architectures_and_unknown_machines_are_refused() -> None:
    assert oci.seccomp_profile("aarch64")["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    with pytest.raises(PaasError, match="no seccomp profile for machine 'riscv64'"):
        oci.seccomp_profile("riscv64")
