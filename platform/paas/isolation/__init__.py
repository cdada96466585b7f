"""What keeps a dyno or a build apart from the host and from other apps: OCI runtime
configs and containers (runc/crun), network namespaces, veths and the firewall, cgroups,
loop-mounted disks, and per-app users.

May import: paas.state, paas.host, paas.domain.
"""
