"""Helpers that start real policyd servers for tests: in a thread (same process) or as
`policyd serve` processes, always on free ports, always stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from policyd import Engine
from policyd.server.app import build_server, run_server
from policyd.server.config import ServeConfig
from policyd.server.decision import decision_service

from .conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def thread_server(path, rate_store=None, **options):
    """A real server in this process; yields (target, built)."""
    cfg = ServeConfig(path=Path(path), port=0, **options)
    engine = Engine.from_path(cfg.path, rate_store=rate_store or cfg.make_rate_store(),
                              rate_failure=cfg.rate_failure)
    built = build_server(engine, cfg, [decision_service(engine, None,
                                                         cfg.max_batch_decisions)])
    stop = threading.Event()
    thread = threading.Thread(target=run_server, args=(built, cfg, stop), daemon=True)
    thread.start()
    target = f"127.0.0.1:{built.port}"
    wait_serving(target, credentials=options.get("_creds"))
    try:
        yield target, built
    finally:
        stop.set()
        thread.join(timeout=10)


def health_status(target: str, timeout: float = 1.0, credentials=None) -> int:
    channel = grpc.secure_channel(target, credentials) if credentials else \
        grpc.insecure_channel(target)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout).status


def wait_serving(target: str, deadline: float = 15.0, credentials=None) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            if health_status(target, credentials=credentials) == \
                    health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        if time.monotonic() > end:
            raise TimeoutError(f"no SERVING server at {target}")
        time.sleep(0.05)


class ServeProcess:
    """`policyd serve` as a child process, with its stderr captured to a file."""

    def __init__(self, path, *args: str, port: int | None = None, tmp: Path):
        self.port = port or free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = tmp / f"serve-{self.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 -- closed in stop()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "policyd", "serve", str(path), "--port", str(self.port),
             *args], stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def wait_serving(self) -> ServeProcess:
        try:
            wait_serving(self.target)
        except TimeoutError:
            raise TimeoutError(self.log()) from None
        return self

    def wait(self, timeout: float = 20) -> int:
        """The exit status of a process expected to stop by itself."""
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def terminate(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
