"""The web console and HTTP API: operators' screens, officers' review queue, the pull feed."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy: hub.store.tables imports hub.console.tables, which must not pull in FastAPI.
    if name == "create_app":
        from hub.console.app import create_app

        return create_app
    raise AttributeError(name)
