"""Where things live inside a router's run directory.

The run directory is the router's whole on-disk state: the live config, the host map it
reads, the two control sockets, the master's pidfile and the generation last applied.
Every module names these files through this one place so they cannot drift apart.
"""

from pathlib import Path

CONFIG_FILE = "haproxy.cfg"
HOSTS_MAP_FILE = "hosts.map"
ADMIN_SOCKET_FILE = "admin.sock"
MASTER_SOCKET_FILE = "master.sock"
PID_FILE = "haproxy.pid"
APPLIED_FILE = "applied.json"
LOCK_FILE = "router.lock"
# The empty directory HAProxy's workers are chrooted to when they drop privileges.
CHROOT_DIR = "chroot"

# A unix socket path must fit in sun_path (108 bytes with its NUL), and HAProxy first binds
# "<path>.<pid>.tmp" and renames it, so leave room for that suffix too.
_SUN_PATH_MAX = 107
_HAPROXY_TMP_SUFFIX = len(".4194304.tmp")


def socket_path_fits(path: Path) -> bool:
    """Whether HAProxy can bind a unix socket at ``path`` (including its temporary name)."""
    return len(str(path).encode()) + _HAPROXY_TMP_SUFFIX <= _SUN_PATH_MAX
