"""The dyno firewall's add-on openings of a whole PAAS_HOME, from its running dynos and
the store's attachments: what a platform start restores (dynos outlive the control plane,
and a killed server left its chain as it was) and what its stop removes. Single dynos are
opened by placement and closed by the network's release of their address
(paas.isolation.addon_firewall says the invariants).
"""

from __future__ import annotations

from paas.domain.dyno import DynoStatus
from paas.domain.settings import Settings
from paas.isolation import addon_firewall, container
from paas.state.store import Store


def grants(store: Store, statuses: list[DynoStatus]) -> list[addon_firewall.Grant]:
    """The openings the home's running container dynos should have."""
    apps = {app.name: app for app in store.apps()}
    found: list[addon_firewall.Grant] = []
    for status in statuses:
        plan = container.plan_from(status.spec.container)
        app = apps.get(status.spec.app)
        if status.state == "exited" or plan is None or app is None:
            continue
        found += addon_firewall.grants_for(plan.address, app.id, store.addon_endpoints(app))
    return found


def restore(settings: Settings, store: Store, statuses: list[DynoStatus]) -> None:
    """At a platform start: the home's chain is exactly what its running dynos need."""
    if addon_firewall.usable():
        addon_firewall.replace_home(settings.home, grants(store, statuses))


def remove(settings: Settings) -> None:
    """At the platform's stop, once its dynos are gone: its chain goes too."""
    if addon_firewall.usable():
        addon_firewall.remove_home(settings.home)
