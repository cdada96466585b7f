"""Fixtures for the router tests: short run directories, free ports, echo backends (which
answer /slow/<seconds> after that long), and a real HAProxy that is always stopped by pid
when the test ends."""

import http.client
import http.server
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import routerkit

from paas_router import haproxy as haproxy_mod
from paas_router import model


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # pytest's tmp_path is often too long for a unix socket path; /tmp/rXXXX is not.
    path = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(run_dir: Path) -> model.RouterSettings:
    return model.RouterSettings(
        http_port=routerkit.free_port(),
        bind_address="127.0.0.1",
        run_dir=run_dir,
        hard_stop_after_s=5,
    )


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    server_id = "?"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith("/slow/"):
            time.sleep(float(self.path.removeprefix("/slow/")))
        body = json.dumps(
            {
                "server": self.server_id,
                "method": self.command,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                # Every value of every header, in order: a header sent twice shows twice.
                "header_values": [[k.lower(), v] for k, v in self.headers.items()],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def backends() -> Iterator[Callable[[str], routerkit.Backend]]:
    """Start echo HTTP servers on free loopback ports; each answers with its id and the
    request headers it received."""
    stops: list[Callable[[], None]] = []

    def start(server_id: str) -> routerkit.Backend:
        handler = type("Handler", (_EchoHandler,), {"server_id": server_id})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        stopped = threading.Event()

        def stop() -> None:
            # Like a dyno stopping: nothing listens on its port any more.
            if not stopped.is_set():
                stopped.set()
                server.shutdown()
                server.server_close()
                thread.join(timeout=5)

        stops.append(stop)
        return routerkit.Backend(server_id, server.server_address[1], stop)

    yield start
    for stop in stops:
        stop()


@pytest.fixture
def haproxy(run_dir: Path) -> Iterator[haproxy_mod.HAProxy]:
    """An HAProxy driver on ``run_dir``; whatever master it started is stopped by pid."""
    proxy = haproxy_mod.HAProxy(run_dir, binary=routerkit.HAPROXY_BINARY)
    yield proxy
    pid = proxy.master_pid()
    pids: set[int] = set()
    if pid is not None:
        pids.add(pid)
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if children.exists():
            pids.update(int(p) for p in children.read_text().split())
    try:
        proxy.stop(timeout=5)
    finally:
        for p in pids:
            if routerkit.process_alive(p):
                os.kill(p, signal.SIGKILL)
