"""Running dynos on this host: the runtime's small interface (start, stop, list, stats,
forget), the supervisor each dyno runs under, the launcher that forks supervisors, the
check of which isolation this host can give dynos, and the placement of a new dyno (port,
address, container plan).

May import: paas.artifacts, paas.isolation, paas.state, paas.host, paas.domain.
"""
