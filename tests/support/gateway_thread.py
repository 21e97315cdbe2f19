"""Run the gateway with uvicorn on a loopback port in a background thread (tests stay synchronous)."""

from __future__ import annotations

import tempfile
import threading
from typing import Any

import uvicorn

from gateway import GatewaySettings, create_app
from service.probes import wait_ready


class GatewayThread:
    def __init__(self, backends: list[str], **settings: Any) -> None:
        # Each gateway gets its own SQLite store unless the test names one (restart, replicas).
        self._data_dir: tempfile.TemporaryDirectory[str] | None = None
        if "data_dir" not in settings and "store_url" not in settings:
            self._data_dir = tempfile.TemporaryDirectory(prefix="gateway-store-")
            settings["data_dir"] = self._data_dir.name
        self.settings = GatewaySettings(backends=backends, port=0, **settings)
        self.app = create_app(self.settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", loop="asyncio")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)
        self.port = 0

    def start(self, timeout: float = 10.0) -> GatewayThread:
        self._thread.start()
        wait_ready(
            lambda: bool(self.server.started),
            what="gateway thread",
            timeout=timeout,
            alive=self._thread.is_alive,
            interval=0.01,
        )
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        if self._data_dir is not None:
            self._data_dir.cleanup()
