"""Serving the console with uvicorn in a background thread of `cebhub run`."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

from hub.config import Settings
from hub.workspace import Workspace

log = logging.getLogger(__name__)
START_TIMEOUT_SECONDS = 30.0


class ConsoleServer:
    """The console on host:port; port 0 picks a free port, read back from `port`."""

    def __init__(
        self,
        ws: Workspace,
        settings: Settings,
        wakeup: threading.Event | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        from hub.console.app import create_app

        app = create_app(ws, settings, wakeup=wakeup)
        config = uvicorn.Config(
            app,
            host=host or settings.console.host,
            port=settings.console.port if port is None else port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, name="console", daemon=True)

    def _serve(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # uvicorn raises OSError or exits when it cannot bind
            self.error = exc

    def start(self) -> ConsoleServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the console did not start: {self.error or 'timed out'}")
            time.sleep(0.02)
        log.info("console on %s", self.url)
        return self

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.server.config.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_console(
    ws: Workspace, settings: Settings, wakeup: threading.Event | None = None
) -> ConsoleServer | None:
    """Start the console for `cebhub run`; None when it cannot be served.

    A console that cannot bind (say a second hub process on the same host, design §9) must not
    stop the hub's own work: the error is logged and the pipeline runs on without it.
    """
    try:
        return ConsoleServer(ws, settings, wakeup).start()
    except (RuntimeError, OSError) as exc:
        log.error(
            "console not served on %s:%s: %s",
            settings.console.host,
            settings.console.port,
            exc,
        )
        return None
