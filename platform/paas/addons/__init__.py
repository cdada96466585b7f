"""Add-ons: the backing services the platform runs itself (PostgreSQL, Redis), the add-on
resources apps own, and the attachments that put an add-on's URL in an app's config.

`service` is the seam between the two halves: the catalog side (resources, attachments,
releases: what the API and a push's app.json ask for) calls a `Service`; the servers side
(one PostgreSQL for every add-on, one Redis per add-on) implements it.

May import: paas.release and everything below it; never paas.api, paas.push or
paas.reconcile.
"""
