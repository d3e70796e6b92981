"""Serving the console: `cebhub run` starts it on the configured port and stops it on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hub import config
from hub.console.server import ConsoleServer

START_SECONDS = 60
CEBHUB = str(Path(sys.executable).parent / "cebhub")  # the installed command, as a user runs it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_console(ws, **values) -> None:
    doc = config.read_document(ws)
    for key, value in values.items():
        doc["console"][key] = value
    config.write_document(ws, doc)


def wait_for(url: str, proc: subprocess.Popen | None = None) -> httpx.Response:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"cebhub run exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start_hub(ws) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [CEBHUB, "-w", str(ws.root), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop_hub(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_console_server_on_a_free_port_starts_and_stops(ws):
    server = ConsoleServer(ws, config.load(ws), port=0).start()
    try:
        assert server.port > 0
        r = httpx.get(f"{server.url}/login")
        assert r.status_code == 200 and "cebhub" in r.text
        assert httpx.get(f"{server.url}/api/orders").status_code == 401
    finally:
        server.stop()
    assert not server.thread.is_alive()


def test_cebhub_run_serves_the_console_until_it_is_stopped(ws):
    port = free_port()
    set_console(ws, port=port)
    proc = start_hub(ws)
    try:
        r = wait_for(f"http://127.0.0.1:{port}/orders", proc)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    finally:
        code = stop_hub(proc)
    assert code == 0, proc.stdout.read().decode(errors="replace")
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))


def test_a_disabled_console_is_not_served(ws):
    port = free_port()
    set_console(ws, port=port, enabled=False)
    proc = start_hub(ws)
    try:
        time.sleep(0.1)
        # the hub runs (the inbox is watched) but nothing listens on the console's port
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert proc.poll() is None
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0
            time.sleep(0.2)
    finally:
        assert stop_hub(proc) == 0


def test_a_second_hub_without_its_port_keeps_working(ws, keys, caplog):
    from hub.console.server import serve_console

    first = ConsoleServer(ws, config.load(ws), port=0).start()
    try:
        set_console(ws, port=first.port)
        assert serve_console(ws, config.load(ws)) is None
        assert "console not served" in caplog.text
        assert httpx.get(f"{first.url}/login").status_code == 200
    finally:
        first.stop()
