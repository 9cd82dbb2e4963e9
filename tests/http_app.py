"""An ASGI app under a real uvicorn on a free loopback port, on a thread, trusting
X-Forwarded-For from 127.0.0.1 (as behind a proxy) so tests can name the caller's IP."""

from __future__ import annotations

import threading
import time

import uvicorn


class UvicornThread:
    def __init__(self, app):
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                access_log=False, lifespan="on", proxy_headers=True,
                                forwarded_allow_ips="127.0.0.1")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                raise OSError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
