"""Making what runs match what is wanted: the agent's tick (read the desired state, plan,
apply), release phases, readiness probes of starting dynos, the route table for the router
and the drains of removed dynos.

May import: paas.release and everything below it; never paas.push.
"""
