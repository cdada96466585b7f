"""Settings read once from the environment (twelve-factor) into a frozen value.

Nothing else in the control plane reads os.environ for configuration: tests build a
Settings directly and pass it in.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from paas.domain import addressing, buildpack_source, python_runtime
from paas.domain.errors import InvalidParams


@dataclass(frozen=True)
class Settings:
    home: Path
    api_port: int = 5050
    http_port: int = 8080
    domain: str = "paas.localhost"
    admin_token: str | None = None
    bind_address: str = "127.0.0.1"
    dyno_user: str = "paas-dyno"
    stop_grace_seconds: float = 30.0
    boot_timeout_seconds: float = 60.0
    release_timeout_seconds: float = 1800.0
    dyno_subnet: str = "10.213.0.0/16"
    # Private networks dynos may reach (backing services on the LAN): PAAS_DYNO_EGRESS_ALLOW.
    dyno_egress_allow: tuple[ipaddress.IPv4Network, ...] = ()
    containers: bool = True
    images_kept: int = 10
    build_memory_mb: int = 2048
    router_client_maxconn: int = 256
    buildpack_sources: tuple[str, ...] = buildpack_source.DEFAULT_PREFIXES
    max_push_mb: int = 256
    push_timeout_seconds: float = 1800.0

    @property
    def max_push_bytes(self) -> int:
        """The largest push body, counted after gunzip."""
        return self.max_push_mb * 1024 * 1024

    @property
    def max_tree_bytes(self) -> int:
        """The most a pushed revision's files may take once extracted."""
        return 4 * self.max_push_bytes

    dyno_disk_mb: int = 1024
    build_disk_mb: int = 4096
    build_cache_mb: int = 2048
    shared_uid: bool = False  # not root: may apps share the platform's uid?
    buildpack_max_mb: int = 100  # the largest buildpack archive fetched (4 x once unpacked)
    # Managed Pythons (uv's downloads) for apps whose stack lacks the Python they ask for:
    # the operator's mirror and downloads JSON, the prefixes an app's own may start with,
    # and the host-wide store they are kept in (None: PAAS_HOME/pythons).
    python_mirror: str = ""
    python_downloads_json: str = ""
    python_sources: tuple[str, ...] = ()
    python_store: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.home / "state.db"

    @property
    def logs_db_path(self) -> Path:
        return self.home / "logs.db"

    @property
    def repos_dir(self) -> Path:
        return self.home / "repos"

    @property
    def slugs_dir(self) -> Path:
        return self.home / "slugs"

    @property
    def images_dir(self) -> Path:
        return self.home / "images"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def builds_dir(self) -> Path:
        return self.home / "builds"

    @property
    def dynos_dir(self) -> Path:
        return self.home / "dynos"

    @property
    def router_dir(self) -> Path:
        return self.home / "router"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def buildpack_cache_dir(self) -> Path:
        """Fetched buildpacks kept by URL and tag (root's alone: no build writes it)."""
        return self.home / "buildpacks-cache"

    @property
    def pythons_dir(self) -> Path:
        """The host-wide store of managed Pythons (paas.artifacts.pythons)."""
        return self.python_store or self.home / "pythons"

    @property
    def tools_dir(self) -> Path:
        return self.home / "tools"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin-token"

    @property
    def routes_path(self) -> Path:
        return self.router_dir / "routes.json"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise InvalidParams(f"{name}={raw!r} is not a TCP port: set it to a number 1-65535")
    return int(raw)


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    default_home = Path.home() / ".paas"
    return Settings(
        home=Path(env.get("PAAS_HOME") or default_home).absolute(),
        api_port=_port(env, "PAAS_API_PORT", 5050),
        http_port=_port(env, "PAAS_HTTP_PORT", 8080),
        domain=env.get("PAAS_DOMAIN") or "paas.localhost",
        admin_token=env.get("PAAS_ADMIN_TOKEN") or None,
        bind_address=env.get("PAAS_BIND_ADDRESS") or "127.0.0.1",
        dyno_user=env.get("PAAS_DYNO_USER") or "paas-dyno",
        stop_grace_seconds=_seconds(env, "PAAS_STOP_GRACE", 30.0),
        boot_timeout_seconds=_seconds(env, "PAAS_BOOT_TIMEOUT", 60.0),
        release_timeout_seconds=_seconds(env, "PAAS_RELEASE_TIMEOUT", 1800.0),
        dyno_subnet=env.get("PAAS_DYNO_SUBNET") or "10.213.0.0/16",
        dyno_egress_allow=addressing.egress_allow(env.get("PAAS_DYNO_EGRESS_ALLOW") or ""),
        containers=(env.get("PAAS_CONTAINERS") or "auto") != "off",
        images_kept=_count(env, "PAAS_IMAGES_KEPT", 10),
        build_memory_mb=_count(env, "PAAS_BUILD_MEMORY_MB", 2048),
        router_client_maxconn=_count(env, "PAAS_ROUTER_CLIENT_MAXCONN", 256),
        buildpack_sources=_prefixes(env, "PAAS_BUILDPACK_SOURCES"),
        max_push_mb=_count(env, "PAAS_MAX_PUSH_MB", 256),
        push_timeout_seconds=_seconds(env, "PAAS_PUSH_TIMEOUT", 1800.0),
        dyno_disk_mb=_disk_mb(env, "PAAS_DYNO_DISK_MB", 1024),
        build_disk_mb=_disk_mb(env, "PAAS_BUILD_DISK_MB", 4096),
        build_cache_mb=_disk_mb(env, "PAAS_BUILD_CACHE_MB", 2048),
        shared_uid=(env.get("PAAS_SHARED_UID") or "0") in ("1", "true", "yes"),
        buildpack_max_mb=_count(env, "PAAS_BUILDPACK_MAX_MB", 100),
        python_mirror=_url(env, python_runtime.MIRROR_SETTING),
        python_downloads_json=_url(env, python_runtime.DOWNLOADS_JSON_SETTING),
        python_sources=_python_sources(env),
        python_store=_python_store(env),
    )


def _url(env: Mapping[str, str], name: str) -> str:
    raw = (env.get(name) or "").strip()
    if raw and not raw.startswith(python_runtime.SCHEMES):
        raise InvalidParams(f"{name}={raw!r} is not a URL: use https://, http:// or file://")
    return raw


def _python_sources(env: Mapping[str, str]) -> tuple[str, ...]:
    try:
        return python_runtime.parse_sources(env.get(python_runtime.SOURCES_SETTING) or "")
    except ValueError as error:
        raise InvalidParams(f"{python_runtime.SOURCES_SETTING}: {error}") from None


def _python_store(env: Mapping[str, str]) -> Path:
    """Host-wide like the stacks: every PAAS_HOME of the host shares it."""
    if env.get("PAAS_PYTHONS_DIR"):
        return Path(env["PAAS_PYTHONS_DIR"]).absolute()
    if os.geteuid() == 0:
        return Path("/var/cache/paas/pythons")
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paas" / "pythons"


def _prefixes(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name)
    if not raw:
        return buildpack_source.DEFAULT_PREFIXES
    try:
        return buildpack_source.parse_prefixes(raw)
    except ValueError as error:
        raise InvalidParams(f"{name}: {error}") from None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise InvalidParams(f"{name}={raw!r} is not a number of seconds (above 0, to 86400)")
    return value


def _disk_mb(env: Mapping[str, str], name: str, default: int) -> int:
    """A filesystem size in MB; 0 turns the cap off."""
    raw = env.get(name, str(default))
    if not raw.isdigit() or 0 < int(raw) < 16:
        raise InvalidParams(f"{name}={raw!r} is not a size in MB: use 16 or more (0: no cap)")
    return int(raw)


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidParams(f"{name}={raw!r} is not a positive whole number")
    return int(raw)
