"""The backing services this platform offers, by name: each server module of paas.addons
(postgresql, redis) gives its `Service` through `service(settings)`. A module that is not
there, or whose server is not installed (its `service` raises a PaasError), is left out.
"""

from __future__ import annotations

import importlib
from typing import cast

from paas.addons.service import Service
from paas.domain.errors import PaasError
from paas.domain.settings import Settings

MODULES = ("postgresql", "redis")


def services(settings: Settings) -> dict[str, Service]:
    found: dict[str, Service] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(f"paas.addons.{name}")
        except ModuleNotFoundError:
            continue
        try:
            service = cast(Service, module.service(settings))
        except PaasError:
            continue
        found[service.name] = service
    return found
