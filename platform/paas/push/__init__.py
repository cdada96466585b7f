"""From `git push` to a release: the git smart-HTTP service, the pre-receive hook's
pipeline (receive, build, image, release, wait for the rollout), the buildpack builder in
its sandbox, and the safe reading of the pushed tree.

May import: paas.release and everything below it; never paas.reconcile (the agent rolls
the release out, the push only watches the store).
"""
