"""What a build leaves and dynos run from: slugs (content-addressed app trees), OCI images,
stack root filesystems, and the collector that keeps them bounded.

May import: paas.isolation, paas.state, paas.host, paas.domain.
"""
